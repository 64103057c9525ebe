/**
 * Session state that must survive a platform restart on the same data directory (the durability contract
 * in src/mqtt/core.ts): inbound QoS 2 packet ids awaiting PUBREL [MQTT-4.3.3-9] and pending delayed wills
 * [MQTT-3.1.3-9, MQTT-3.1.2-8].
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { IPubcompPacket, IPubrecPacket } from 'mqtt-packet';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, uniqueId, waitFor } from './helpers.js';
import { RC } from '../../src/mqtt/reason-codes.js';

const dirs: string[] = [];
const platforms: TestPlatform[] = [];
afterEach(async () => {
  for (const p of platforms.splice(0)) await p.stop().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<TestPlatform> {
  const p = await startTestPlatform({}, { dataDir });
  platforms.push(p);
  return p;
}

async function stop(p: TestPlatform): Promise<void> {
  platforms.splice(platforms.indexOf(p), 1);
  await p.stop();
}

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'thingstead-restart-'));
  dirs.push(d);
  return d;
}

/** A raw v5 client with a persistent session (Session Expiry Interval 600 s). */
async function persistentRaw(p: TestPlatform, clientId: string, clean: boolean): Promise<RawClient> {
  const raw = await RawClient.open(p, 5);
  raw.send(
    {
      cmd: 'connect',
      protocolVersion: 5,
      clientId,
      clean,
      keepalive: 30,
      properties: { sessionExpiryInterval: 600 },
    },
    5,
  );
  await raw.next('connack');
  return raw;
}

describe('restart on the same data directory', () => {
  it('a resent QoS 2 PUBLISH whose packet id awaits PUBREL is not routed twice after a restart [MQTT-4.3.3-9]', async () => {
    const dir = dataDir();
    const clientId = uniqueId('q2');
    const topic = `restart-q2/${clientId}`;
    const p1 = await start(dir);
    const a = await persistentRaw(p1, clientId, true);
    a.send(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from('once'),
        qos: 2,
        retain: false,
        dup: false,
        messageId: 7,
      },
      5,
    );
    expect(((await a.next('pubrec')) as IPubrecPacket).messageId).toBe(7);
    // Gone before its PUBREL, then the server restarts.
    a.destroy();
    await waitFor(() => !p1.broker.isConnected(clientId));
    await stop(p1);

    const p2 = await start(dir);
    const w = await connect(p2);
    const got = collect(w);
    await w.subscribeAsync(topic, { qos: 2 });
    const b = await persistentRaw(p2, clientId, false);
    b.send(
      { cmd: 'publish', topic, payload: Buffer.from('once'), qos: 2, retain: false, dup: true, messageId: 7 },
      5,
    );
    const rec = (await b.next('pubrec')) as IPubrecPacket;
    expect(rec.messageId).toBe(7);
    expect(rec.reasonCode ?? RC.SUCCESS).toBe(RC.SUCCESS);
    b.send({ cmd: 'pubrel', messageId: 7 }, 5);
    const comp = (await b.next('pubcomp')) as IPubcompPacket;
    // The id was known: PUBCOMP Success, not 0x92 Packet Identifier not found.
    expect(comp.reasonCode ?? RC.SUCCESS).toBe(RC.SUCCESS);
    // A new QoS 2 PUBLISH is routed (the watcher hears it), and the resent one was not.
    b.send(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from('next'),
        qos: 2,
        retain: false,
        dup: false,
        messageId: 8,
      },
      5,
    );
    await waitFor(() => got.some((m) => m.payload === 'next'), 3000, 'the next message');
    expect(got.map((m) => m.payload)).toEqual(['next']);
    b.destroy();
    await end(w);
  });

  it('a pending delayed will fires at its time after a restart; reconnecting in time cancels it [MQTT-3.1.3-9]', async () => {
    const dir = dataDir();
    const topic = `restart-will/${uniqueId()}`;
    const idA = uniqueId('wa');
    const idB = uniqueId('wb');
    const p1 = await start(dir);
    const opts = (clientId: string) => ({
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: 600 },
      will: {
        topic,
        payload: Buffer.from(clientId),
        qos: 1 as const,
        retain: false,
        properties: { willDelayInterval: 4 },
      },
    });
    const a = await connect(p1, opts(idA));
    const b = await connect(p1, opts(idB));
    const t0 = Date.now();
    a.stream.destroy();
    b.stream.destroy();
    await waitFor(() => !p1.broker.isConnected(idA) && !p1.broker.isConnected(idB));
    await stop(p1);

    const p2 = await start(dir);
    const w = await connect(p2);
    const got = collect(w);
    await w.subscribeAsync(topic, { qos: 1 });
    // B resumes its session in time: its will is cancelled; A's fires at its time.
    const back = await connect(p2, {
      clientId: idB,
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    });
    await waitFor(() => got.length >= 1, 8000, "A's will");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3500);
    await new Promise((r) => setTimeout(r, 500));
    expect(got.map((m) => m.payload)).toEqual([idA]);
    await end(w, back);
  });

  it('a pending will whose session expired while the server was down is published at start-up [MQTT-3.1.2-8]', async () => {
    const dir = dataDir();
    const topic = `restart-will-expired/${uniqueId()}`;
    const clientId = uniqueId('we');
    const p1 = await start(dir);
    const c = await connect(p1, {
      clientId,
      clean: false,
      // The will waits min(60, 1) s: the session ends first.
      properties: { sessionExpiryInterval: 1 },
      will: {
        topic,
        payload: Buffer.from('gone'),
        qos: 1,
        retain: true,
        properties: { willDelayInterval: 60 },
      },
    });
    c.stream.destroy();
    await waitFor(() => !p1.broker.isConnected(clientId));
    await stop(p1);
    await new Promise((r) => setTimeout(r, 1200));
    const p2 = await start(dir);
    await waitFor(() => p2.broker.retained(topic), 3000, 'the retained will');
    expect(p2.broker.retained(topic)!.payload.toString()).toBe('gone');
  });
});
