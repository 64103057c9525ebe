/**
 * One Thingstead platform for bench/fuzz.ts, in its own process so its RSS is its own. Runs on the data
 * directory given as argv[2] (kept across restarts). Sends `{ port }` to the parent once listening;
 * SIGTERM closes it gracefully (so its stored state is complete) and exits.
 */
import { loadConfig } from '../src/config/index.js';
import { createPlatform } from '../src/platform/index.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: fuzz-server.ts <dataDir>');
const config = loadConfig({
  env: {},
  overrides: {
    dataDir,
    logLevel: 'error',
    http: { port: 0 },
    mqtt: { port: 0, tlsPort: null, allowAnonymous: true },
    limits: { connectTimeoutMs: 500 },
  },
});
const platform = await createPlatform(config);
process.send?.({ port: platform.endpoints.mqttPort });
process.once('SIGTERM', () => {
  void platform.close().then(() => process.exit(0));
});
