/**
 * Gateway benchmark (issue 15): the replay rate after an outage while live traffic continues, and the
 * gateway's RSS with 1,000 tags at 1 Hz. Run: `npx tsx bench/gateway.ts [--tags 1000] [--devices 10]
 * [--outage-s 60] [--warmup-s 30] [--max-inflight 100] [--per-tag-topics] [--no-rule]
 * [--gateway-node-options '--max-semi-space-size=2'] [--gateway-entry dist/cli/main.js]
 * [--out bench/results/gateway.json]` after `npm run build`.
 *
 * Processes: this one runs the platform (`createPlatform`, as `thingstead up`, log level warn) and the Modbus
 * TCP field devices (modbus-serial's ServerTCP, `--devices` of them holding `--tags` registers between them,
 * values changing); a child process runs the built `thingstead gateway` binary over mutual TLS with its own
 * certificate, polling every device once a second; its /metrics (queue, uplink, process RSS) is read every
 * 250 ms. A topic rule routes the gateway's records into the time-series store (`--no-rule`
 * leaves it out, to see the broker alone).
 *
 * 1. RSS: after `--warmup-s`, the median of the child's RSS samples over the next 10 s.
 * 2. Outage: the platform is closed for `--outage-s` (polling goes on into the disk queue), then started on
 *    the same data directory and port. Replay rate = records acknowledged per second from the reconnect
 *    until the backlog is gone (pending below one second of live records); live records are part of it,
 *    since polling never stops. Also reported: the net drain rate (backlog / drain time).
 * Records: by default the tags of one device read in one poll travel as one record (the gateway's
 * default); `--per-tag-topics` gives every tag its own topic, one record per tag per second (1,000/s).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { signedFetch } from '../src/api/index.js';
import { loadConfig } from '../src/config/index.js';
import { createPlatform, type Platform } from '../src/platform/index.js';
import { arg, flag, machine, median, sleep } from './lib/common.js';

interface ChildReport {
  rss: number;
  heap: number;
  pending: number;
  acked: number;
  records: number;
  connected: boolean;
  dropped: number;
}

// ---- the gateway process: `thingstead gateway` itself, read through its /metrics --------------------------

/** Scrape the gateway's /metrics into the figures the bench follows. */
async function scrape(port: number): Promise<ChildReport | null> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => null);
  if (!text) return null;
  const value = (name: string) => {
    let total = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm')))
      total += Number(m[1]);
    return total;
  };
  return {
    rss: value('thingstead_process_resident_memory_bytes'),
    heap: value('thingstead_nodejs_heap_size_used_bytes'),
    pending: value('thingstead_gateway_queue_pending'),
    acked: value('thingstead_gateway_upstream_acked_total'),
    records: value('thingstead_gateway_records_total'),
    connected: value('thingstead_gateway_upstream_connected') === 1,
    dropped: value('thingstead_gateway_queue_dropped_total'),
  };
}

// ---- the platform and field devices --------------------------------------------------------------------

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function modbusDevice(port: number, registers: number) {
  const { ServerTCP } = (await import('modbus-serial')).default as unknown as {
    ServerTCP: new (
      v: object,
      o: object,
    ) => { on(e: string, f: () => void): void; close(cb: () => void): void };
  };
  const holding = new Array<number>(registers).fill(0);
  const timer = setInterval(() => {
    for (let i = 0; i < holding.length; i++) holding[i] = (holding[i]! + i + 1) & 0xffff;
  }, 500);
  const server = new ServerTCP(
    {
      getHoldingRegister: (a: number) => holding[a] ?? 0,
      getMultipleHoldingRegisters: (a: number, n: number) => holding.slice(a, a + n),
    },
    { host: '127.0.0.1', port, unitID: 1 },
  );
  await new Promise<void>((r) => server.on('initialized', r));
  return { close: () => (clearInterval(timer), new Promise<void>((r) => server.close(() => r()))) };
}

/** Publish `count` QoS 1 messages from a separate MQTT.js process with `window` in flight; messages/s. */
async function mqttControl(tlsPort: number, dir: string, count: number, window: number): Promise<number> {
  const code = `
    import mqtt from 'mqtt';
    import { readFileSync } from 'node:fs';
    const d = ${JSON.stringify(dir)};
    const c = await mqtt.connectAsync('mqtts://127.0.0.1:${tlsPort}', { clientId: 'bench-gw', protocolVersion: 5,
      ca: readFileSync(d + '/ca.pem'), cert: readFileSync(d + '/gw.cert.pem'), key: readFileSync(d + '/gw.private.key') });
    const body = JSON.stringify({ seq: 1, ts: Date.now(), device: 'plc-0', t0: 12345 });
    let sent = 0, acked = 0; const t0 = performance.now();
    await new Promise((done) => {
      const pump = () => { while (sent < ${count} && sent - acked < ${window}) { const i = sent++;
        c.publish('things/bench-gw/field/plc-' + (i % 10) + '/t' + (i % 100), body, { qos: 1 }, () => { if (++acked === ${count}) done(); else pump(); }); } };
      pump();
    });
    console.log(Math.round(${count} / ((performance.now() - t0) / 1000)));
    await c.endAsync();`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString()));
  await new Promise((r) => child.once('exit', r));
  return Number(text.trim());
}

async function platformAt(dataDir: string, tlsPort: number): Promise<Platform> {
  return createPlatform(
    loadConfig({
      env: {},
      overrides: {
        dataDir,
        logLevel: 'warn',
        http: { port: 0 },
        mqtt: { port: null, tlsPort, allowAnonymous: false },
      } as never,
    }),
  );
}

async function main(): Promise<void> {
  const tags = Number(arg('tags', '1000'));
  const devices = Number(arg('devices', '10'));
  const outageS = Number(arg('outage-s', '60'));
  const warmupS = Number(arg('warmup-s', '30'));
  const maxInflight = Number(arg('max-inflight', '100'));
  const perTag = flag('per-tag-topics');
  const withRule = !flag('no-rule');
  const out = arg('out', '');
  /** V8 flags for the gateway process only, e.g. `--max-semi-space-size=2` (a smaller young generation). */
  const nodeOptions = arg('gateway-node-options', '').split(' ').filter(Boolean);
  /** The binary to run, e.g. a copy of an earlier build, to compare two builds in one session. */
  const entry = arg('gateway-entry', 'dist/cli/main.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-gw-platform-'));
  const gwDir = mkdtempSync(join(tmpdir(), 'bench-gw-state-'));
  const tlsPort = await freePort();
  let platform = await platformAt(dataDir, tlsPort);

  // The gateway's identity: thing, certificate, a policy for its own topics.
  const c = await platform.security.certificates.createKeysAndCertificate({
    setAsActive: true,
    keyType: 'ec-p256',
  });
  await platform.security.policies.createPolicy(
    'bench-gw',
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }],
    }),
  );
  await platform.security.policies.attachPolicy(
    'bench-gw',
    platform.security.certificates.certificateArn(c.certificateId),
  );
  if (withRule) {
    const key = await platform.credentials.create('bench-gw-admin', 'admin');
    await signedFetch(
      {
        endpoint: platform.endpoints.http,
        region: platform.config.region,
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
      },
      'POST',
      '/rules/bench_gw_ts',
      {
        body: {
          sql: "SELECT * FROM 'things/bench-gw/#'",
          awsIotSqlVersion: '2016-03-23',
          actions: [{ timeseries: { thingName: '${device}', timestamp: '${ts}' } }],
        },
      },
    );
  }

  const perDevice = Math.ceil(tags / devices);
  const servers = [];
  const mappingDevices = [];
  for (let d = 0; d < devices; d++) {
    const port = await freePort();
    servers.push(await modbusDevice(port, perDevice));
    mappingDevices.push({
      name: `plc-${d}`,
      protocol: 'modbus',
      host: '127.0.0.1',
      port,
      pollIntervalMs: 1000,
      tags: Array.from({ length: Math.min(perDevice, tags - d * perDevice) }, (_, i) => ({
        name: `t${i}`,
        table: 'holding',
        address: i,
        type: 'uint16',
        ...(perTag ? { topic: 'things/{gateway}/field/{device}/{tag}' } : {}),
      })),
    });
  }
  const mapping = JSON.stringify({ devices: mappingDevices });
  const recordsPerS = perTag ? tags : devices;

  const reports: ChildReport[] = [];
  let last: ChildReport | null = null;
  writeFileSync(join(gwDir, 'mapping.json'), mapping);
  writeFileSync(join(gwDir, 'gw.cert.pem'), c.certificatePem);
  writeFileSync(join(gwDir, 'gw.private.key'), c.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(gwDir, 'ca.pem'), platform.tls.caPem);
  const metricsPort = await freePort();
  // The built binary, as an operator runs it (npm run build first; tsx would add its own memory).
  const gw = spawn(
    process.execPath,
    [
      ...nodeOptions,
      entry,
      'gateway',
      ...[
        '--mapping',
        join(gwDir, 'mapping.json'),
        '--thing',
        'bench-gw',
        '--endpoint',
        `mqtts://127.0.0.1:${tlsPort}`,
      ],
      ...[
        '--cert',
        join(gwDir, 'gw.cert.pem'),
        '--key',
        join(gwDir, 'gw.private.key'),
        '--ca',
        join(gwDir, 'ca.pem'),
      ],
      ...[
        '--state-dir',
        join(gwDir, 'state'),
        '--metrics-port',
        String(metricsPort),
        '--max-inflight',
        String(maxInflight),
      ],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const poller = setInterval(() => {
    void scrape(metricsPort).then((r) => {
      if (!r) return;
      last = r;
      reports.push(r);
    });
  }, 250);
  const now = () => last!;
  while (!last || !(last as ChildReport).connected) await sleep(100);
  console.log(
    `gateway connected; ${tags} tags on ${devices} devices at 1 Hz, ${recordsPerS} records/s (${perTag ? 'one topic per tag' : 'one record per device poll'})`,
  );

  // 1. RSS at steady state.
  await sleep(warmupS * 1000);
  const from = reports.length;
  await sleep(10_000);
  const rssSamples = reports.slice(from).map((r) => r.rss);
  const rssMb = median(rssSamples) / 1048576;
  const loadRss = loadavg()[0]!;
  console.log(
    `RSS ${rssMb.toFixed(1)} MB (median of ${rssSamples.length} samples), heap ${(now().heap / 1048576).toFixed(1)} MB, load ${loadRss.toFixed(1)}`,
  );

  // 2. The outage.
  await platform.close();
  const downAt = Date.now();
  await sleep(outageS * 1000);
  const backlog = now().pending;
  console.log(`outage ${outageS} s: ${backlog} records queued`);
  platform = await platformAt(dataDir, tlsPort);
  const upAt = Date.now();
  while (!now().connected) await sleep(50);
  console.log(`reconnected ${Date.now() - upAt} ms after the platform came back`);
  const reconnectAt = Date.now();
  const ackedAtReconnect = now().acked;
  let shown = Date.now();
  while (now().pending > recordsPerS) {
    if (Date.now() - reconnectAt > 600_000) throw new Error('backlog not drained in 10 minutes');
    if (Date.now() - shown > 5000) {
      shown = Date.now();
      console.log(
        `  draining: ${now().pending} pending, ${now().acked - ackedAtReconnect} acknowledged since the reconnect`,
      );
    }
    await sleep(50);
  }
  const drainedAt = Date.now();
  const drainS = (drainedAt - reconnectAt) / 1000;
  const acked = now().acked - ackedAtReconnect;
  const loadReplay = loadavg()[0]!;
  const result = {
    machine: machine(),
    config: {
      tags,
      devices,
      recordsPerS,
      perTagTopics: perTag,
      rule: withRule,
      maxInflight,
      outageS,
      warmupS,
    },
    rss: {
      medianMb: Math.round(rssMb * 10) / 10,
      samples: rssSamples.length,
      loadAverage: loadRss,
      targetMb: 100,
    },
    replay: {
      backlog,
      reconnectMs: reconnectAt - upAt,
      drainS: Math.round(drainS * 10) / 10,
      ackedPerS: Math.round(acked / drainS),
      netDrainPerS: Math.round(backlog / drainS),
      liveDuringReplayPerS: recordsPerS,
      dropped: now().dropped,
      loadAverage: loadReplay,
      target: 5000,
    },
    outageMs: upAt - downAt,
  };
  console.log(
    `replay: ${backlog} queued, drained in ${drainS.toFixed(1)} s while live polling went on: ` +
      `${result.replay.ackedPerS} records/s acknowledged (net ${result.replay.netDrainPerS}/s), dropped ${result.replay.dropped}, load ${loadReplay.toFixed(1)}`,
  );
  clearInterval(poller);
  gw.kill('SIGTERM');
  await new Promise((r) => gw.once('exit', r));
  // The control: plain MQTT.js in a process of its own, same certificate, same topics and record size, the
  // same window of 100 unacknowledged QoS 1 publishes, no queue: the uplink's ceiling on this platform.
  const control = await mqttControl(tlsPort, gwDir, Math.min(backlog, 20_000), maxInflight);
  const withControl = {
    ...result,
    control: { mqttJsQos1PerS: control, ratio: Math.round((result.replay.ackedPerS / control) * 100) / 100 },
  };
  console.log(
    `control: MQTT.js alone, QoS 1, window ${maxInflight}: ${control} msgs/s; gateway replay / control = ${withControl.control.ratio}`,
  );
  if (out) writeFileSync(out, JSON.stringify(withControl, null, 2) + '\n');
  for (const s of servers) await s.close();
  await platform.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(gwDir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
