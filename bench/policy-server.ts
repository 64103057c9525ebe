/**
 * One Thingstead broker for bench/policy.ts, in its own process: `off` = authorization off (the broker's
 * allow-everything loopback hooks), `enforced` = the platform's device security with a realistic policy
 * attached to `anonymous`, so every CONNECT, SUBSCRIBE, PUBLISH and delivery is decided by policy.
 * Sends `{ port }` to the parent over IPC once listening.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/index.js';
import { anonymousLoopbackHooks } from '../src/mqtt/index.js';
import { createPlatform } from '../src/platform/index.js';

const mode = process.argv[2] === 'off' ? 'off' : 'enforced';
const dataDir = mkdtempSync(join(tmpdir(), `policy-bench-${mode}-`));
const config = loadConfig({
  env: {},
  overrides: {
    dataDir,
    logLevel: 'warn',
    http: { port: 0 },
    mqtt: { port: 0, tlsPort: null, allowAnonymous: true },
  },
});
const platform = await createPlatform(config, {
  hooks: mode === 'off' ? anonymousLoopbackHooks(true) : undefined,
});
const A = `arn:aws:iot:${config.region}:${config.accountId}`;

/** A realistic device policy: variables, several statements, explicit denies that never match the load. */
export const BENCH_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${A}:client/*` },
    {
      Effect: 'Allow',
      Action: ['iot:Publish', 'iot:Receive'],
      Resource: [`${A}:topic/bench/*`, `${A}:topic/$aws/things/\${iot:ClientId}/shadow/*`],
    },
    {
      Effect: 'Allow',
      Action: 'iot:Subscribe',
      Resource: [`${A}:topicfilter/bench/*`, `${A}:topicfilter/$aws/things/\${iot:ClientId}/shadow/*`],
    },
    { Effect: 'Deny', Action: 'iot:Publish', Resource: `${A}:topic/bench/forbidden/*` },
    { Effect: 'Deny', Action: 'iot:Receive', Resource: `${A}:topic/bench/secret/*` },
  ],
});

if (mode === 'enforced') {
  await platform.security.policies.createPolicy('bench', BENCH_POLICY);
  await platform.security.policies.attachPolicy('bench', 'anonymous');
}
process.send?.({ port: platform.endpoints.mqttPort });
const stop = () => {
  void platform.close().then(() => {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
