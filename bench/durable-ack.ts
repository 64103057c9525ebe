/**
 * What durable acknowledgements cost (issue 8). Run: `npx tsx bench/durable-ack.ts [--messages 20000]`.
 *
 * Since issue 8 a QoS 1 PUBLISH that writes to the store (retained, or queued for an offline persistent
 * session) is acknowledged only after the batch holding the write commits. This starts a platform in-process
 * on SQLite (a temp data dir) and measures, with one MQTT 5 client over loopback TCP:
 * - sequential: one retained QoS 1 publish at a time, PUBACK latency p50/p99 (each waits for its own batch);
 * - windowed: 100 QoS 1 publishes in flight to a topic an offline persistent session subscribes, msg/s;
 * - online: the same window to an online subscriber only (no store write: the unchanged fast path), msg/s.
 * Copy the file into a checkout of an older commit to compare (it imports only src/ and the test helper).
 */
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import { startTestPlatform } from '../test/helpers/platform.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const N = Number(arg('messages', '20000'));
const payload = Buffer.alloc(200, 0x61);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function windowed(client: mqtt.MqttClient, topic: string, n: number, window = 100): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      await client.publishAsync(topic, payload, { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return n / ((performance.now() - t0) / 1000);
}

const platform = await startTestPlatform({ mqtt: { allowAnonymous: true } });
const url = `mqtt://127.0.0.1:${platform.endpoints.mqttPort}`;
try {
  const pub = await mqtt.connectAsync(url, { clientId: 'bench-pub', protocolVersion: 5, reconnectPeriod: 0 });

  const seqN = Math.min(N, 3000);
  const lat: number[] = [];
  for (let i = 0; i < seqN; i++) {
    const t = performance.now();
    await pub.publishAsync(`bench/retained/${i % 500}`, payload, { qos: 1, retain: true });
    lat.push(performance.now() - t);
  }

  const off = await mqtt.connectAsync(url, {
    clientId: 'bench-offline',
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    reconnectPeriod: 0,
  });
  await off.subscribeAsync('bench/queued', { qos: 1 });
  await off.endAsync();
  // Stay under the session's queue bound so every publish is a real store write.
  const queuedN = Math.min(N, platform.config.limits.maxQueuedPerSession);
  const queued = await windowed(pub, 'bench/queued', queuedN);

  const sub = await mqtt.connectAsync(url, { clientId: 'bench-sub', protocolVersion: 5, reconnectPeriod: 0 });
  await sub.subscribeAsync('bench/online', { qos: 1 });
  const online = await windowed(pub, 'bench/online', N);

  console.log(
    JSON.stringify(
      {
        node: process.version,
        sequentialRetainedQos1: {
          messages: seqN,
          p50ms: +pct(lat, 50).toFixed(3),
          p99ms: +pct(lat, 99).toFixed(3),
        },
        queuedForOfflineQos1: { messages: queuedN, msgPerSec: Math.round(queued) },
        onlineOnlyQos1: { messages: N, msgPerSec: Math.round(online) },
      },
      null,
      2,
    ),
  );
  await Promise.all([pub.endAsync(), sub.endAsync()]);
} finally {
  await platform.stop();
}
