import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_TASKS } from '../../src/cluster/index.js';
import { postgresAvailable } from '../helpers/postgres.js';
import { natsAvailable } from '../helpers/nats.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { scrapeMetric, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Work that runs once per cluster (src/cluster/leader.ts), on three in-process nodes sharing the machine's
 * PostgreSQL and NATS: each task has exactly one holder (thingstead_cluster_leader, GET /cluster), the
 * holder's tasks move within a few heartbeats (200 ms here) when it stops, a job rollout notifies each
 * device exactly once, and the continuous analytics export (which every node would otherwise run, writing
 * the whole cluster's telemetry into its own directory) runs on one node only, then on another once it stops.
 */

const ready =
  (await postgresAvailable('cluster leadership work tests')) &&
  (await natsAvailable('cluster leadership work tests'));
const HEARTBEAT = 200;

const leaderGauge = (node: TestPlatform, task: string) =>
  scrapeMetric(node, 'thingstead_cluster_leader', new RegExp(`task="${task.replace('.', '\\.')}"`));
/** For each task, how many of `nodes` report holding it on /metrics. */
async function holders(nodes: TestPlatform[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of CLUSTER_TASKS) {
    let n = 0;
    for (const node of nodes) n += await leaderGauge(node, t);
    out[t] = n;
  }
  return out;
}
const oneEach = Object.fromEntries(CLUSTER_TASKS.map((t) => [t, 1]));

describe.skipIf(!ready)('single-runner work on a three-node cluster', () => {
  let cluster: TestCluster;
  let nodes: TestPlatform[];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    cluster = await startTestCluster(3, { jobs: { tickMs: 100 } });
    nodes = [...cluster.nodes];
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await cluster?.stop();
  });

  it('a job rollout notifies each device exactly once, whichever node it was created on', async () => {
    const [a, b, c] = nodes as [TestPlatform, TestPlatform, TestPlatform];
    const leader = await waitFor(
      () => nodes.find((n) => n.jobs.rollout.isLeader()),
      5000,
      'a rollout leader',
    );
    expect(nodes.filter((n) => n.jobs.rollout.isLeader())).toHaveLength(1);
    const things = Array.from({ length: 9 }, (_, i) => `dev${i}`);
    const got = new Map<string, Array<{ jobId?: string; probe?: boolean }>>();
    for (const [i, thing] of things.entries()) {
      await a.registry.createThing({ thingName: thing });
      // Devices spread over the three nodes; the rollout runs on one of them.
      const node = nodes[i % 3]!;
      const client = await mqtt.connectAsync(node.endpoints.mqtt!, {
        clientId: thing,
        protocolVersion: 5,
        reconnectPeriod: 0,
      });
      clients.push(client);
      const list: Array<{ jobId?: string; probe?: boolean }> = [];
      got.set(thing, list);
      client.on('message', (_topic, payload) => {
        const text = payload.toString();
        if (text === 'probe') list.push({ probe: true });
        else list.push({ jobId: (JSON.parse(text) as { execution?: { jobId?: string } }).execution?.jobId });
      });
      await client.subscribeAsync(`$aws/things/${thing}/jobs/notify-next`, { qos: 1 });
    }
    // Subscriptions reach the other nodes asynchronously: wait until a probe from the leader crosses.
    await waitFor(
      () => {
        for (const thing of things)
          if (!got.get(thing)!.some((m) => m.probe))
            leader.broker.publish({
              topic: `$aws/things/${thing}/jobs/notify-next`,
              payload: Buffer.from('probe'),
              qos: 0,
              retain: false,
            });
        return things.every((t) => got.get(t)!.some((m) => m.probe));
      },
      5000,
      'routes from the leader to every device',
    );
    for (const list of got.values()) list.length = 0;
    // Created through a node that does not run the rollout.
    const creator = [a, b, c].find((n) => n !== leader)!;
    await creator.jobs.service.createJob({
      jobId: 'once',
      targets: things.map((t) => `arn:aws:iot:${a.config.region}:${a.config.accountId}:thing/${t}`),
      document: '{"op":"reboot"}',
    });
    await waitFor(() => things.every((t) => got.get(t)!.length > 0), 10_000, 'every device notified');
    // Several more ticks and heartbeats: nothing more arrives.
    await new Promise((r) => setTimeout(r, 5 * HEARTBEAT));
    for (const t of things) expect(got.get(t)).toEqual([{ jobId: 'once' }]);
    const executions = await a.jobs.store.listForJob('once', { limit: 100 });
    expect(executions.map((e) => [e.thingName, e.executionNumber]).sort()).toEqual(
      things.map((t) => [t, 1]).sort(),
    );
  }, 30_000);

  it('each task has exactly one holder; when it stops, another node takes its tasks within a few heartbeats', async () => {
    await waitFor(
      async () => JSON.stringify(await holders(nodes)) === JSON.stringify(oneEach),
      5000,
      'holders',
    );
    // Over several heartbeats: never two, never none.
    for (let i = 0; i < 5; i++) {
      expect(await holders(nodes)).toEqual(oneEach);
      await new Promise((r) => setTimeout(r, HEARTBEAT / 2));
    }
    // GET /cluster names what each node runs.
    const views = await Promise.all(
      nodes.map(
        async (n) => (await (await fetch(`${n.endpoints.http}/cluster`)).json()) as { leads: string[] },
      ),
    );
    expect(views.flatMap((v) => v.leads).sort()).toEqual([...CLUSTER_TASKS].sort());
    const holder = nodes[views.findIndex((v) => v.leads.includes('jobs.rollout'))]!;
    expect(holder.jobs.rollout.isLeader()).toBe(true);
    const t0 = Date.now();
    await holder.stop();
    const rest = nodes.filter((n) => n !== holder);
    await waitFor(
      async () => JSON.stringify(await holders(rest)) === JSON.stringify(oneEach),
      10 * HEARTBEAT,
      'take-over',
    );
    expect(Date.now() - t0).toBeLessThan(10 * HEARTBEAT);
    expect(rest.filter((n) => n.jobs.rollout.isLeader())).toHaveLength(1);
  }, 30_000);
});

describe.skipIf(!ready)('the continuous analytics export in a cluster', () => {
  let cluster: TestCluster;
  const nodes: TestPlatform[] = [];
  const dirs: string[] = [];
  const INTERVAL = 200;

  /** Telemetry files under a node's export directory. */
  const files = (dir: string): string[] => {
    const root = join(dir, 'telemetry');
    return existsSync(root)
      ? (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.parquet'))
      : [];
  };

  beforeAll(async () => {
    // The schema and settings of a cluster; its three nodes started here, each with an export directory.
    cluster = await startTestCluster(0);
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'thingstead-export-'));
      dirs.push(dir);
      nodes.push(
        await startTestPlatform(
          { ...cluster.config, metering: { export: { dir, intervalMs: INTERVAL, lagMs: 0 } } },
          { dataDir: cluster.dataDir },
        ),
      );
    }
  }, 60_000);
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await cluster?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('runs on one node only, and on another once that node stops', async () => {
    let stopWriting = false;
    let writer: TestPlatform = nodes[0]!;
    const writing = (async () => {
      while (!stopWriting) {
        await writer.timeseries.write([{ thing: 'meter-1', metric: 'kwh', ts: Date.now(), value: 1 }]);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await waitFor(() => dirs.some((d) => files(d).length >= 3), 10_000, 'exported windows');
      // Many intervals later, still one node's directory only.
      await new Promise((r) => setTimeout(r, 5 * INTERVAL));
      const counts = dirs.map((d) => files(d).length);
      expect(counts.filter((n) => n > 0)).toHaveLength(1);
      const i = counts.findIndex((n) => n > 0);
      expect(await leaderGauge(nodes[i]!, 'metering.export')).toBe(1);

      const rest = nodes.filter((_, j) => j !== i);
      writer = rest[0]!;
      await nodes[i]!.stop();
      await waitFor(() => dirs.some((d, j) => j !== i && files(d).length > 0), 10_000, 'export taken over');
      await new Promise((r) => setTimeout(r, 5 * INTERVAL));
      expect(dirs.filter((d, j) => j !== i && files(d).length > 0)).toHaveLength(1);
    } finally {
      stopWriting = true;
      await writing;
    }
  }, 60_000);
});
