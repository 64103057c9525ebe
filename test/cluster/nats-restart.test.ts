import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable } from '../helpers/postgres.js';
import { connectCollecting, freePort, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { scrapeMetric, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * NATS restarted in the middle of traffic (a private nats-server for this test, so other tests keep
 * theirs): both nodes say they are degraded while it is gone, reconnect on their own, re-announce their
 * interest, and cross-node delivery resumes; what did not cross while it was down is at most what the
 * publishing node counted as unrouted (`thingstead_cluster_unrouted_total`), and nothing arrives twice.
 */

const NATS_BIN = '/usr/sbin/nats-server';
const ready = (await postgresAvailable('NATS restart test')) && existsSync(NATS_BIN);
if (!existsSync(NATS_BIN)) {
  if (process.env.CI === 'true') throw new Error(`${NATS_BIN} required in CI`);
  console.warn(`SKIP: ${NATS_BIN} missing; the NATS restart test is skipped`);
}

function startNats(port: number): ChildProcess {
  return spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
}

describe.skipIf(!ready)('NATS restarted under traffic', () => {
  let nats: ChildProcess;
  let port: number;
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    port = await freePort();
    nats = startNats(port);
    await new Promise((r) => setTimeout(r, 300));
    cluster = await startTestCluster(2, { cluster: { natsUrl: `nats://127.0.0.1:${port}` } });
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await cluster?.stop();
    nats?.kill('SIGKILL');
  });

  it('recovers by itself; losses are bounded by the unrouted count; no duplicates', async () => {
    const [a, b] = cluster.nodes as [TestPlatform, TestPlatform];
    const sub = await connectCollecting(b.endpoints.mqtt!, 'sub');
    const pub = await connectCollecting(a.endpoints.mqtt!, 'pub');
    clients.push(sub, pub);
    await sub.subscribeAsync('traffic/#', { qos: 0 });
    await waitFor(
      async () => {
        pub.publish('traffic/x', 'probe');
        await new Promise((r) => setTimeout(r, 20));
        return sub.got.some((m) => m.payload === 'probe');
      },
      5000,
      'route A -> B',
    );
    sub.got.length = 0;

    let seq = 0;
    let stop = false;
    const sending = (async () => {
      while (!stop) {
        pub.publish('traffic/x', String(seq++));
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const before = await scrapeMetric(a, 'thingstead_cluster_unrouted_total');
    nats.kill('SIGKILL');
    await waitFor(
      async () => (await fetch(`${a.endpoints.http}/healthz`)).status === 503,
      5000,
      'A degraded',
    );
    const health = (await (await fetch(`${a.endpoints.http}/healthz`)).json()) as { problems: string[] };
    expect(health.problems.join(' ')).toMatch(/NATS unreachable/);
    await new Promise((r) => setTimeout(r, 700));
    nats = startNats(port);
    await waitFor(
      async () => (await fetch(`${a.endpoints.http}/healthz`)).status === 200,
      10_000,
      'A healthy',
    );
    const resumeFrom = seq;
    await waitFor(
      () => sub.got.some((m) => Number(m.payload) >= resumeFrom),
      10_000,
      'deliveries resume after the restart',
    );
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await sending;
    const last = seq;
    await new Promise((r) => setTimeout(r, 500));

    const got = sub.got.map((m) => Number(m.payload));
    expect(new Set(got).size).toBe(got.length);
    const lost = last - got.length;
    const unrouted = (await scrapeMetric(a, 'thingstead_cluster_unrouted_total')) - before;
    console.log(
      `NATS restart: ${last} sent, ${got.length} delivered across nodes, ${lost} lost, ${unrouted} counted unrouted`,
    );
    expect(unrouted).toBeGreaterThan(0);
    expect(lost).toBeLessThanOrEqual(unrouted);
  }, 60_000);
});
