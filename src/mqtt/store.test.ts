/** Contract suite for MqttStore, run against SQLite and PostgreSQL. */
import { afterAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../../test/helpers/postgres.js';
import { openDatabase, type Database } from '../store/index.js';
import { createMqttStore } from './broker.js';
import type { MqttStore } from './store.js';

/** A throwaway schema per run so parallel test files never collide. */
async function freshPostgres(): Promise<Database> {
  const { url } = await freshSchema('mqtt');
  return openDatabase({ dataDir: '', databaseUrl: url });
}

async function contract(store: MqttStore): Promise<void> {
  await store.init();
  expect(await store.loadSessions()).toEqual([]);
  const message = {
    topic: 'a/b',
    payload: Buffer.from([0, 1, 2, 255]),
    qos: 1 as const,
    retain: false,
    properties: { contentType: 'x/y', correlationData: Buffer.from('c'), userProperties: { k: 'v' } },
    expiresAt: 1_900_000_000_000,
  };
  await store.apply([
    { op: 'session', clientId: 'c1', protocolVersion: 5, expiryInterval: 60, disconnectedAt: null },
    {
      op: 'subscribe',
      clientId: 'c1',
      sub: { filter: 'a/+', qos: 1, nl: true, rap: false, rh: 1, subId: 7 },
    },
    {
      op: 'subscribe',
      clientId: 'c1',
      sub: { filter: 'b/#', qos: 2, nl: false, rap: true, rh: 0, subId: undefined },
    },
    { op: 'enqueue', clientId: 'c1', seq: 1, message, state: 0, packetId: null },
    {
      op: 'enqueue',
      clientId: 'c1',
      seq: 2,
      message: { ...message, properties: undefined, expiresAt: null },
      state: 0,
      packetId: null,
    },
    { op: 'session', clientId: 'c2', protocolVersion: 4, expiryInterval: 10, disconnectedAt: 1000 },
  ]);
  // Updates: state change by upsert, subscription replace, removal.
  await store.apply([
    { op: 'enqueue', clientId: 'c1', seq: 2, message, state: 1, packetId: 42 },
    {
      op: 'subscribe',
      clientId: 'c1',
      sub: { filter: 'a/+', qos: 0, nl: false, rap: false, rh: 2, subId: undefined },
    },
    { op: 'unsubscribe', clientId: 'c1', filter: 'b/#' },
    { op: 'session', clientId: 'c1', protocolVersion: 5, expiryInterval: 60, disconnectedAt: 5000 },
  ]);
  const sessions = (await store.loadSessions()).sort((a, b) => a.clientId.localeCompare(b.clientId));
  expect(sessions.map((s) => s.clientId)).toEqual(['c1', 'c2']);
  const c1 = sessions[0]!;
  expect(c1).toMatchObject({ protocolVersion: 5, expiryInterval: 60, disconnectedAt: 5000 });
  expect(c1.subscriptions).toEqual([
    { filter: 'a/+', qos: 0, nl: false, rap: false, rh: 2, subId: undefined },
  ]);
  expect(c1.queue.map((q) => [q.seq, q.state, q.packetId])).toEqual([
    [1, 0, null],
    [2, 1, 42],
  ]);
  const q1 = c1.queue[0]!.message;
  expect(q1.payload.equals(message.payload)).toBe(true);
  expect(q1.properties?.contentType).toBe('x/y');
  expect(q1.properties?.correlationData?.toString()).toBe('c');
  expect(q1.properties?.userProperties).toEqual({ k: 'v' });
  expect(q1.expiresAt).toBe(message.expiresAt);
  expect(c1.queue[1]!.message.properties).toBeUndefined();

  await store.apply([
    { op: 'dequeue', clientId: 'c1', seq: 1 },
    { op: 'deleteSession', clientId: 'c2' },
  ]);
  const after = await store.loadSessions();
  expect(after.map((s) => s.clientId)).toEqual(['c1']);
  expect(after[0]!.queue.map((q) => q.seq)).toEqual([2]);

  await store.apply([
    { op: 'retain', message: { ...message, retain: true, modifiedAt: 123 } },
    { op: 'retain', message: { ...message, topic: 'x', retain: true, modifiedAt: 124 } },
    { op: 'unretain', topic: 'x' },
  ]);
  const retained = await store.loadRetained();
  expect(retained).toHaveLength(1);
  expect(retained[0]).toMatchObject({ topic: 'a/b', qos: 1, retain: true, modifiedAt: 123 });
  expect(retained[0]!.payload.equals(message.payload)).toBe(true);

  // The owner of a retained message (the per-client retained quota) is stored, replaced and read back.
  await store.apply([
    { op: 'retain', message: { ...message, topic: 'o/1', retain: true, modifiedAt: 125, owner: 'dev-1' } },
    { op: 'retain', message: { ...message, topic: 'o/2', retain: true, modifiedAt: 126, owner: 'dev-1' } },
    { op: 'retain', message: { ...message, topic: 'o/2', retain: true, modifiedAt: 127, owner: 'dev-2' } },
  ]);
  const owners = Object.fromEntries((await store.loadRetained()).map((r) => [r.topic, r.owner]));
  expect(owners).toEqual({ 'a/b': null, 'o/1': 'dev-1', 'o/2': 'dev-2' });
  await store.apply([
    { op: 'unretain', topic: 'o/1' },
    { op: 'unretain', topic: 'o/2' },
  ]);

  // Inbound QoS 2 packet ids awaiting PUBREL and a pending delayed will: stored, replaced, read back, and
  // deleted with the session.
  const will = {
    topic: 'w/t',
    payload: Buffer.from([9, 0, 9]),
    qos: 1 as const,
    retain: true,
    properties: { contentType: 'c', correlationData: Buffer.from('k') },
    fireAt: 1_900_000_000_123,
    principal: { kind: 'certificate' as const, id: 'cert-1', thingName: 'thing-1' },
    info: { transport: 'tls' as const, remoteAddress: '10.0.0.1', remotePort: 5000, localPort: 8883 },
  };
  await store.apply([
    { op: 'session', clientId: 'c3', protocolVersion: 5, expiryInterval: 60, disconnectedAt: 7000 },
    { op: 'qos2', clientId: 'c1', packetIds: [7, 9] },
    { op: 'qos2', clientId: 'c3', packetIds: [1, 2, 3] },
    { op: 'qos2', clientId: 'c3', packetIds: [2, 65535] },
    { op: 'will', clientId: 'c3', will: { ...will, fireAt: 1 } },
    { op: 'will', clientId: 'c3', will },
    { op: 'will', clientId: 'c1', will },
    { op: 'will', clientId: 'c1', will: null },
  ]);
  const withState = Object.fromEntries((await store.loadSessions()).map((x) => [x.clientId, x]));
  expect(withState.c1!.incomingQos2).toEqual([7, 9]);
  expect(withState.c1!.will ?? null).toBeNull();
  expect(withState.c3!.incomingQos2).toEqual([2, 65535]);
  const w3 = withState.c3!.will!;
  expect(w3).toMatchObject({
    topic: 'w/t',
    qos: 1,
    retain: true,
    fireAt: will.fireAt,
    principal: will.principal,
    info: will.info,
  });
  expect(w3.payload.equals(will.payload)).toBe(true);
  expect(w3.properties?.correlationData?.toString()).toBe('k');
  await store.apply([
    { op: 'qos2', clientId: 'c1', packetIds: [] },
    { op: 'deleteSession', clientId: 'c3' },
    { op: 'session', clientId: 'c3', protocolVersion: 5, expiryInterval: 60, disconnectedAt: 8000 },
  ]);
  const cleared = Object.fromEntries((await store.loadSessions()).map((x) => [x.clientId, x]));
  expect(cleared.c1!.incomingQos2).toEqual([]);
  expect(cleared.c3!.incomingQos2).toEqual([]);
  expect(cleared.c3!.will ?? null).toBeNull();
  await store.apply([{ op: 'deleteSession', clientId: 'c3' }]);

  // init() again is idempotent (migrations applied once).
  await store.init();
  expect((await store.loadRetained()).length).toBe(1);
}

describe('MqttStore contract', () => {
  const open: Database[] = [];
  afterAll(async () => {
    for (const db of open) await db.close();
  });

  it('SQLite', async () => {
    const db = await openDatabase({ dataDir: '', databaseUrl: null, file: ':memory:' });
    open.push(db);
    await contract(createMqttStore(db));
  });

  it('PostgreSQL', async (ctx) => {
    if (!(await postgresAvailable('MQTT PostgreSQL store tests'))) return ctx.skip();
    const db = await freshPostgres();
    open.push(db);
    await contract(createMqttStore(db));
  });
});
