/** CONNECT / CONNACK [MQTT-3.1, MQTT-3.2]: validation, client ids, keep-alive, takeover, auth hooks. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { anonymousLoopbackHooks, type AuthHooks } from '../../src/mqtt/index.js';
import { RawClient, collect, connect, end, uniqueId, waitFor } from './helpers.js';
import type { IAuthPacket } from 'mqtt-packet';
import { RC, reasonName } from '../../src/mqtt/reason-codes.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform({
    limits: { keepAliveMin: 2, keepAliveMax: 30, connectTimeoutMs: 300 },
  });
});
afterAll(async () => {
  await platform?.stop();
});

describe('CONNECT', () => {
  it('the first packet must be CONNECT [MQTT-3.1.0-1]', async () => {
    const raw = await RawClient.open(platform);
    raw.send({ cmd: 'pingreq' });
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  it('a second CONNECT is a protocol violation [MQTT-3.1.0-2] (v5 DISCONNECT 0x82)', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    const d = await raw.next('disconnect');
    expect((d as { reasonCode: number }).reasonCode).toBe(RC.PROTOCOL_ERROR);
    await raw.waitClosed();
  });

  it('unsupported protocol level gets CONNACK 0x01 and close [MQTT-3.1.2-2]', async () => {
    const raw = await RawClient.open(platform);
    // CONNECT with protocol level 6.
    raw.write([
      0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x0a, 0x00, 0x02, 0x61, 0x62,
    ]);
    await raw.waitClosed();
    const connack = raw.packets.find((p) => p.cmd === 'connack') as { returnCode?: number } | undefined;
    expect(connack?.returnCode).toBe(1);
  });

  it('a CONNECT that never comes is timed out (limits.connectTimeoutMs)', async () => {
    const raw = await RawClient.open(platform);
    await raw.waitClosed(3000);
  });

  it('3.1.1: empty client id needs clean session [MQTT-3.1.3-7, MQTT-3.1.3-8] (CONNACK 0x02)', async () => {
    const raw = await RawClient.open(platform);
    // CONNECT 3.1.1, clean session 0, keep-alive 10, zero-length client id (mqtt-packet refuses to build it).
    raw.write([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x0a, 0x00, 0x00]);
    const c = (await raw.next('connack')) as { returnCode: number };
    expect(c.returnCode).toBe(2);
    await raw.waitClosed();
    const ok = await connect(platform, { protocolVersion: 4, clientId: '', clean: true });
    expect(ok.connected).toBe(true);
    await end(ok);
  });

  it('v5: empty client id gets an Assigned Client Identifier [MQTT-3.2.2-16]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: '', clean: true, keepalive: 10 }, 5);
    const ack = (await raw.next('connack')) as { properties?: { assignedClientIdentifier?: string } };
    expect(ack.properties?.assignedClientIdentifier).toMatch(/^ts-/);
    raw.destroy();
  });

  it('keep-alive is clamped to [keepAliveMin, keepAliveMax] and told via Server Keep Alive [MQTT-3.2.2-21]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 600 }, 5);
    const ack = (await raw.next('connack')) as { properties?: { serverKeepAlive?: number } };
    expect(ack.properties?.serverKeepAlive).toBe(30);
    raw.destroy();
  });

  it('closes a client silent for 1.5 x keep-alive [MQTT-3.1.2-22]', async () => {
    const raw = await RawClient.open(platform, 4);
    const started = Date.now();
    raw.send({ cmd: 'connect', protocolVersion: 4, clientId: uniqueId(), clean: true, keepalive: 1 });
    await raw.next('connack');
    // keepalive 1 is clamped up to keepAliveMin 2 -> closed after ~3 s.
    await raw.waitClosed(6000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
  }, 10_000);

  it('session takeover: a second CONNECT with the same id closes the first (v5 DISCONNECT 0x8E) [MQTT-3.1.4-3]', async () => {
    const clientId = uniqueId('dup');
    const first = await connect(platform, { clientId });
    let reason: number | undefined;
    first.on('disconnect', (p) => (reason = p.reasonCode));
    const second = await connect(platform, { clientId });
    await waitFor(() => reason !== undefined);
    expect(reason).toBe(RC.SESSION_TAKEN_OVER);
    expect(platform.broker.isConnected(clientId)).toBe(true);
    expect(platform.broker.clients().filter((c) => c.clientId === clientId)).toHaveLength(1);
    await end(first, second);
  });

  it('v5: an authentication method nobody supports gets CONNACK 0x8C [MQTT-4.12.0-1]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        properties: { authenticationMethod: 'SCRAM-SHA-1' },
      },
      5,
    );
    const ack = (await raw.next('connack')) as { reasonCode: number };
    expect(ack.reasonCode).toBe(RC.BAD_AUTHENTICATION_METHOD);
    await raw.waitClosed();
  });
});

describe('authentication and authorization hooks', () => {
  let locked: TestPlatform;
  let allowConnect = true;
  const hooks: AuthHooks = {
    ...anonymousLoopbackHooks(true),
    authenticate: (req) =>
      req.username === 'good'
        ? { ok: true, principal: { kind: 'accessKey', id: 'AKIDGOOD' } }
        : { ok: false, reasonCode: 0x86, reason: 'bad user name or password' },
    authorizeConnection: () => allowConnect,
    authorizePublish: (_s, topic) => !topic.startsWith('deny/'),
    authorizeSubscribe: (_s, filter) => !filter.startsWith('deny/'),
    authorizeReceive: (_s, topic) => !topic.startsWith('noreceive/'),
    authorizeRetain: (_s, topic) => !topic.startsWith('noretain/'),
    enhancedAuth: {
      supports: (m) => m === 'TOKEN',
      step: async ({ data, step }) =>
        step === 0
          ? { continue: true, data: Buffer.from('challenge') }
          : data?.toString() === 'answer'
            ? { continue: false, decision: { ok: true, principal: { kind: 'internal', id: 'token' } } }
            : { continue: false, decision: { ok: false, reasonCode: 0x87, reason: 'wrong answer' } },
    },
  };
  beforeAll(async () => {
    locked = await startTestPlatform({}, { hooks });
  });
  afterAll(async () => {
    await locked?.stop();
  });

  it('refused credentials: v5 CONNACK reason from the hook, 3.1.1 return code 4', async () => {
    await expect(connect(locked, { username: 'bad', password: 'x' })).rejects.toThrow(/[Bb]ad [Uu]ser/);
    const raw = await RawClient.open(locked);
    raw.send({
      cmd: 'connect',
      protocolVersion: 4,
      clientId: uniqueId(),
      clean: true,
      keepalive: 10,
      username: 'bad',
    });
    expect(((await raw.next('connack')) as { returnCode: number }).returnCode).toBe(4);
  });

  it('publish refused: v5 PUBACK 0x87 (QoS 1), QoS 0 dropped; 3.1.1 disconnected', async () => {
    const c = await connect(locked, { username: 'good' });
    const watcher = await connect(locked, { username: 'good' });
    const got = collect(watcher);
    await watcher.subscribeAsync('+/x');
    await expect(c.publishAsync('deny/x', 'no', { qos: 1 })).rejects.toThrow();
    await c.publishAsync('deny/x', 'no', { qos: 0 });
    const v3 = await connect(locked, { username: 'good', protocolVersion: 4 });
    const closed = new Promise<void>((r) => v3.once('close', () => r()));
    v3.publish('deny/y', 'no');
    await closed;
    expect(got).toEqual([]);
    await end(c, watcher, v3);
  });

  it('subscribe refused per filter: SUBACK 0x87 (v5) / 0x80 (3.1.1)', async () => {
    for (const [version, refused] of [
      [5, 0x87],
      [4, 0x80],
    ] as const) {
      const raw = await RawClient.open(locked, version);
      raw.send(
        {
          cmd: 'connect',
          protocolVersion: version,
          clientId: uniqueId(),
          clean: true,
          keepalive: 10,
          username: 'good',
        },
        version,
      );
      await raw.next('connack');
      raw.send(
        {
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: [
            { topic: 'ok/a', qos: 1 },
            { topic: 'deny/a', qos: 1 },
          ],
        },
        version,
      );
      const suback = (await raw.next('suback')) as { granted: number[] };
      expect(suback.granted).toEqual([1, refused]);
      raw.destroy();
    }
  });

  it('receive refused: the delivery is skipped', async () => {
    const c = await connect(locked, { username: 'good' });
    const got = collect(c);
    await c.subscribeAsync(['noreceive/#', 'yes/#']);
    await c.publishAsync('noreceive/a', 'x', { qos: 1 });
    await c.publishAsync('yes/a', 'y', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.topic).toBe('yes/a');
    await end(c);
  });

  it('retain refused without iot:RetainPublish (PUBACK 0x87) and nothing is retained', async () => {
    const c = await connect(locked, { username: 'good' });
    await expect(c.publishAsync('noretain/a', 'x', { qos: 1, retain: true })).rejects.toThrow();
    expect(locked.broker.retained('noretain/a')).toBeUndefined();
    await end(c);
  });

  it('reauthorize() disconnects connections no longer allowed (v5 0x87)', async () => {
    const c = await connect(locked, { username: 'good' });
    let reason: number | undefined;
    c.on('disconnect', (p) => (reason = p.reasonCode));
    allowConnect = false;
    locked.broker.reauthorize();
    allowConnect = true;
    await waitFor(() => reason !== undefined);
    expect(reason).toBe(RC.NOT_AUTHORIZED);
    await end(c);
  });

  it('disconnectWhere() disconnects matching clients with the reason code', async () => {
    const id = uniqueId('kick');
    const c = await connect(locked, { username: 'good', clientId: id });
    let reason: number | undefined;
    c.on('disconnect', (p) => (reason = p.reasonCode));
    expect(locked.broker.disconnectWhere((s) => s.clientId === id, 0x98)).toBe(1);
    await waitFor(() => reason !== undefined);
    expect(reason).toBe(RC.ADMINISTRATIVE_ACTION);
    await end(c);
  });

  it('enhanced authentication: CONNECT method -> AUTH 0x18 challenge -> AUTH answer -> CONNACK [MQTT-4.12.0-2]', async () => {
    const raw = await RawClient.open(locked, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        properties: { authenticationMethod: 'TOKEN' },
      },
      5,
    );
    const auth = (await raw.next('auth')) as {
      reasonCode: number;
      properties: { authenticationData: Buffer };
    };
    expect(auth.reasonCode).toBe(RC.CONTINUE_AUTHENTICATION);
    expect(auth.properties.authenticationData.toString()).toBe('challenge');
    raw.send(
      {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: { authenticationMethod: 'TOKEN', authenticationData: Buffer.from('answer') },
      },
      5,
    );
    const ack = (await raw.next('connack')) as {
      reasonCode: number;
      properties: { authenticationMethod: string };
    };
    expect(ack.reasonCode).toBe(0);
    expect(ack.properties.authenticationMethod).toBe('TOKEN');
    raw.destroy();
  });

  /** A v5 raw client through the TOKEN challenge/answer exchange, connected. */
  async function tokenClient(): Promise<RawClient> {
    const raw = await RawClient.open(locked, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId('reauth'),
        clean: true,
        keepalive: 10,
        properties: { authenticationMethod: 'TOKEN' },
      },
      5,
    );
    await raw.next('auth');
    raw.packets.length = 0;
    raw.send(authPacket(RC.CONTINUE_AUTHENTICATION, 'TOKEN', 'answer'), 5);
    expect(((await raw.next('connack')) as { reasonCode: number }).reasonCode).toBe(RC.SUCCESS);
    raw.packets.length = 0;
    return raw;
  }
  const authPacket = (reasonCode: number, method: string, data: string): IAuthPacket => ({
    cmd: 'auth',
    reasonCode,
    properties: { authenticationMethod: method, authenticationData: Buffer.from(data) },
  });
  type Auth = {
    reasonCode: number;
    properties: { authenticationMethod: string; authenticationData?: Buffer };
  };

  it('re-authentication: AUTH 0x19 -> AUTH 0x18 challenge -> AUTH 0x18 answer -> AUTH 0x00, other packets flow meanwhile; another method is a protocol error [MQTT-4.12.1-1]', async () => {
    const raw = await tokenClient();
    raw.send(authPacket(RC.RE_AUTHENTICATE, 'TOKEN', 'again'), 5);
    const challenge = (await raw.next('auth')) as Auth;
    expect(reasonName(challenge.reasonCode)).toBe('CONTINUE_AUTHENTICATION');
    expect(challenge.properties.authenticationMethod).toBe('TOKEN');
    expect(challenge.properties.authenticationData?.toString()).toBe('challenge');
    // The connection goes on serving other packets during the exchange.
    raw.send({ cmd: 'pingreq' }, 5);
    await raw.next('pingresp');
    raw.packets.length = 0;
    raw.send(authPacket(RC.CONTINUE_AUTHENTICATION, 'TOKEN', 'answer'), 5);
    const done = (await raw.next('auth')) as Auth;
    expect(reasonName(done.reasonCode)).toBe('SUCCESS');
    expect(done.properties.authenticationMethod).toBe('TOKEN');
    // Still connected, and it can re-authenticate again.
    raw.packets.length = 0;
    raw.send(authPacket(RC.RE_AUTHENTICATE, 'TOKEN', 'again'), 5);
    expect(reasonName(((await raw.next('auth')) as Auth).reasonCode)).toBe('CONTINUE_AUTHENTICATION');
    expect(raw.closed).toBe(false);
    // Another method than the CONNECT's is a Protocol Error.
    raw.send(authPacket(RC.RE_AUTHENTICATE, 'OTHER', 'x'), 5);
    expect(reasonName(((await raw.next('disconnect')) as { reasonCode: number }).reasonCode)).toBe(
      'PROTOCOL_ERROR',
    );
    await raw.waitClosed();
    // So is any AUTH from a client that gave no method at CONNECT.
    const plain = await RawClient.open(locked, 5);
    plain.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        username: 'good',
      },
      5,
    );
    await plain.next('connack');
    plain.send(authPacket(RC.RE_AUTHENTICATE, 'TOKEN', 'x'), 5);
    expect(reasonName(((await plain.next('disconnect')) as { reasonCode: number }).reasonCode)).toBe(
      'PROTOCOL_ERROR',
    );
    await plain.waitClosed();
  });

  it('re-authentication that fails disconnects with the reason code of the refusal [MQTT-4.12.1-2]', async () => {
    const raw = await tokenClient();
    raw.send(authPacket(RC.RE_AUTHENTICATE, 'TOKEN', 'again'), 5);
    await raw.next('auth');
    raw.send(authPacket(RC.CONTINUE_AUTHENTICATION, 'TOKEN', 'wrong'), 5);
    const d = (await raw.next('disconnect')) as { reasonCode: number };
    expect(reasonName(d.reasonCode)).toBe('NOT_AUTHORIZED');
    await raw.waitClosed();
  });
});
