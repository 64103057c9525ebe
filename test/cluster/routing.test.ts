import type mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable } from '../helpers/postgres.js';
import { natsAvailable } from '../helpers/nats.js';
import { connectCollecting, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Three nodes on the machine's PostgreSQL and NATS (src/cluster): a publish on one node reaches
 * subscribers on the others exactly once, a share group spreads over the nodes with each message to one
 * member, retained messages are cluster-wide, and a client id moves between nodes with its session.
 */

const ready =
  (await postgresAvailable('cluster routing tests')) && (await natsAvailable('cluster routing tests'));

/** A v5 client on `node`, collecting what it receives from the start. */
const client = (node: TestPlatform, clientId: string, opts: mqtt.IClientOptions = {}) =>
  connectCollecting(node.endpoints.mqtt!, clientId, opts);

describe.skipIf(!ready)('cluster of three nodes', () => {
  let cluster: TestCluster;
  let a: TestPlatform;
  let b: TestPlatform;
  let c: TestPlatform;
  const clients: MqttClient[] = [];
  const track = <T extends MqttClient>(x: T) => (clients.push(x), x);

  beforeAll(async () => {
    cluster = await startTestCluster(3, { cluster: { sharedSubscriptions: 'balanced' } });
    [a, b, c] = cluster.nodes as [TestPlatform, TestPlatform, TestPlatform];
  }, 60_000);
  afterAll(async () => {
    for (const x of clients) x.end(true);
    await cluster?.stop();
  });

  it('a publish on A reaches subscribers on B and C exactly once, overlapping filters included', async () => {
    const onB = track(await client(b, 'sub-b'));
    const onC = track(await client(c, 'sub-c'));
    await onB.subscribeAsync({ 'fleet/+/t': { qos: 1 }, 'fleet/#': { qos: 1 } });
    await onC.subscribeAsync('fleet/v1/t', { qos: 1 });
    const gotB = onB.got;
    const gotC = onC.got;
    const pub = track(await client(a, 'pub-a'));
    // The subscriptions reach NATS asynchronously: wait until a probe crosses.
    await waitFor(
      async () => {
        await pub.publishAsync('fleet/v1/t', 'probe', { qos: 1 });
        return gotB.length > 0 && gotC.length > 0;
      },
      5000,
      'routes to B and C',
    );
    // A later probe may still arrive after the reset: the run's messages are the m{i} ones.
    gotB.length = 0;
    gotC.length = 0;
    const run = (got: typeof gotB) => got.map((m) => m.payload).filter((p) => p !== 'probe');
    for (let i = 0; i < 50; i++) await pub.publishAsync('fleet/v1/t', `m${i}`, { qos: 1 });
    await waitFor(() => run(gotB).length >= 50 && run(gotC).length >= 50, 5000, 'all 50 on B and C');
    await new Promise((r) => setTimeout(r, 200));
    const want = Array.from({ length: 50 }, (_, i) => `m${i}`);
    expect(run(gotB)).toEqual(want);
    expect(run(gotC)).toEqual(want);
    // A topic with levels NATS cannot carry as they are (dots, spaces, empty levels, non-ASCII).
    await pub.publishAsync('fleet/a.b c//é', 'odd', { qos: 1 });
    await waitFor(() => gotB.some((m) => m.topic === 'fleet/a.b c//é'), 3000, 'odd topic on B');
  });

  it('a share group spreads across nodes, each message to one member in the cluster (balanced)', async () => {
    const members = [
      track(await client(a, 'w-a')),
      track(await client(b, 'w-b')),
      track(await client(c, 'w-c')),
    ];
    for (const m of members) await m.subscribeAsync('$share/workers/work/#', { qos: 1 });
    const got = members.map((m) => m.got);
    const pub = track(await client(b, 'work-pub'));
    await new Promise((r) => setTimeout(r, 300));
    const n = 90;
    for (let i = 0; i < n; i++) await pub.publishAsync(`work/${i}`, `j${i}`, { qos: 1 });
    await waitFor(() => got.flat().length >= n, 5000, 'every job delivered');
    await new Promise((r) => setTimeout(r, 300));
    const all = got.flat().map((m) => m.payload);
    expect(all.length).toBe(n);
    expect(new Set(all).size).toBe(n);
    // NATS queue groups choose at random: every node gets a share of 90.
    for (const g of got) expect(g.length).toBeGreaterThan(5);
  });

  it('retained messages are cluster-wide: set on A, replayed to a subscriber on C, cleared from B', async () => {
    const pub = track(await client(a, 'ret-a'));
    await pub.publishAsync('config/r1', 'v1', { qos: 1, retain: true });
    await waitFor(() => c.broker.retained('config/r1')?.payload.toString() === 'v1', 3000, 'retained on C');
    const sub = track(await client(c, 'ret-c'));
    const got = sub.got;
    await sub.subscribeAsync('config/#', { qos: 1 });
    await waitFor(() => got.length === 1, 3000, 'retained replay on C');
    expect(got[0]).toMatchObject({ topic: 'config/r1', payload: 'v1', retain: true });
    const clear = track(await client(b, 'ret-b'));
    await clear.publishAsync('config/r1', '', { qos: 1, retain: true });
    await waitFor(
      () => a.broker.retained('config/r1') === undefined && c.broker.retained('config/r1') === undefined,
      3000,
      'cleared everywhere',
    );
  });

  it('a client id taken on another node closes the old connection with 0x8E and brings its session', async () => {
    const first = track(
      await client(a, 'roamer', { clean: false, properties: { sessionExpiryInterval: 300 } }),
    );
    await first.subscribeAsync('roam/#', { qos: 1 });
    const reasons: number[] = [];
    first.on('disconnect', (p) => reasons.push(p.reasonCode ?? -1));
    const second = track(
      await client(b, 'roamer', { clean: false, properties: { sessionExpiryInterval: 300 } }),
    );
    await waitFor(() => reasons.length > 0, 3000, 'old connection told');
    expect(reasons[0]).toBe(0x8e);
    expect(a.broker.isConnected('roamer')).toBe(false);
    // The subscription came along from PostgreSQL: B now routes roam/# for it.
    const got = second.got;
    const pub = track(await client(c, 'roam-pub'));
    await waitFor(
      async () => {
        await pub.publishAsync('roam/x', 'hello', { qos: 1 });
        return got.length > 0;
      },
      5000,
      'delivery to the roamer on B',
    );
    expect(got[0]!.topic).toBe('roam/x');

    // Offline on B with queued QoS 1 messages, then back on C: every queued message arrives.
    second.end(true);
    await waitFor(() => !b.broker.isConnected('roamer'), 3000, 'roamer offline');
    got.length = 0;
    for (let i = 0; i < 20; i++) await pub.publishAsync('roam/q', `q${i}`, { qos: 1 });
    const third = track(
      await client(c, 'roamer', { clean: false, properties: { sessionExpiryInterval: 300 } }),
    );
    const gotThird = third.got;
    await waitFor(
      () => gotThird.filter((m) => m.topic === 'roam/q').length >= 20,
      5000,
      'queued messages on C',
    );
    expect(gotThird.filter((m) => m.topic === 'roam/q').map((m) => m.payload)).toEqual(
      Array.from({ length: 20 }, (_, i) => `q${i}`),
    );
  });

  it('the directory keeps the claim of a clean-start take-over and of a take-over on the same node', async () => {
    const nodeId = async (n: TestPlatform) =>
      ((await (await fetch(`${n.endpoints.http}/cluster`)).json()) as { node: { id: string } }).node.id;
    const db = new pg.Client({ connectionString: cluster.schemaUrl });
    await db.connect();
    const row = async () =>
      (await db.query('SELECT node_id, conn FROM cluster_clients WHERE client_id = $1', ['cs'])).rows[0] as
        { node_id: string; conn: string | null } | undefined;
    try {
      const persistent = { clean: false, properties: { sessionExpiryInterval: 300 } };
      track(await client(a, 'cs', persistent));
      // Clean start on B: A's session ends there, B's new one must keep B's claim.
      track(await client(b, 'cs', { clean: true, properties: { sessionExpiryInterval: 300 } }));
      await new Promise((r) => setTimeout(r, 300));
      expect((await row())?.node_id).toBe(await nodeId(b));
      expect((await row())?.conn).not.toBeNull();
      // Take-over on the same node: the old connection's end must not clear the new one's record.
      track(await client(b, 'cs', persistent));
      await new Promise((r) => setTimeout(r, 300));
      expect((await row())?.node_id).toBe(await nodeId(b));
      expect((await row())?.conn).not.toBeNull();
    } finally {
      await db.end();
    }
  });

  it('GET /cluster lists the three nodes, alive', async () => {
    const res = await fetch(`${a.endpoints.http}/cluster`);
    expect(res.status).toBe(200);
    const view = (await res.json()) as { nodes: Array<{ alive: boolean; self: boolean }> };
    expect(view.nodes.length).toBe(3);
    expect(view.nodes.every((n) => n.alive)).toBe(true);
    expect(view.nodes.filter((n) => n.self).length).toBe(1);
  });
});

describe.skipIf(!ready)('local-first share groups (the default)', () => {
  let cluster: TestCluster;
  const clients: MqttClient[] = [];
  beforeAll(async () => {
    cluster = await startTestCluster(3);
  }, 60_000);
  afterAll(async () => {
    for (const x of clients) x.end(true);
    await cluster?.stop();
  });

  it('a group is served on the publishing node when a member is online there, else on another node', async () => {
    const [a, b, c] = cluster.nodes as [TestPlatform, TestPlatform, TestPlatform];
    const onA = await client(a, 'l-a');
    const onB = await client(b, 'l-b');
    clients.push(onA, onB);
    for (const m of [onA, onB]) await m.subscribeAsync('$share/local/lf/#', { qos: 1 });
    const pubA = await client(a, 'lf-pub-a');
    const pubC = await client(c, 'lf-pub-c');
    clients.push(pubA, pubC);
    await waitFor(
      async () => {
        await pubC.publishAsync('lf/probe', 'probe', { qos: 1 });
        return onA.got.length + onB.got.length > 0;
      },
      5000,
      'C knows the group',
    );
    // A later probe may still arrive after the reset: it is not one of the run's 50.
    onA.got.length = 0;
    onB.got.length = 0;
    const dropProbes = () => {
      for (const m of [onA, onB]) m.got = m.got.filter((x) => x.payload !== 'probe');
    };
    for (let i = 0; i < 20; i++) await pubA.publishAsync(`lf/${i}`, `a${i}`, { qos: 1 });
    for (let i = 0; i < 30; i++) await pubC.publishAsync(`lf/${i}`, `c${i}`, { qos: 1 });
    await waitFor(
      () => {
        dropProbes();
        return onA.got.length + onB.got.length >= 50;
      },
      5000,
      'all 50 placed',
    );
    await new Promise((r) => setTimeout(r, 300));
    dropProbes();
    const all = [...onA.got, ...onB.got].map((x) => x.payload);
    expect(all.length).toBe(50);
    expect(new Set(all).size).toBe(50);
    // Published on A: A's own member, no hop. Published on C (no member there): NATS picks A or B.
    expect(onB.got.filter((x) => x.payload.startsWith('a'))).toEqual([]);
    expect(onA.got.filter((x) => x.payload.startsWith('a')).length).toBe(20);
    expect(onB.got.filter((x) => x.payload.startsWith('c')).length).toBeGreaterThan(0);
  });
});
