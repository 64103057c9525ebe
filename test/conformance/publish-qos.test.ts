/** PUBLISH and QoS 0/1/2 flows [MQTT-4.3], over TCP, TLS and WebSocket, MQTT 3.1.1 and 5.0. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowAllDevice, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, uniqueId, waitFor, type Transport } from './helpers.js';

let platform: TestPlatform;
/** A certificate allowed everything: the TLS port requires one, also in anonymous dev mode. */
let device: { cert: string; key: string };
beforeAll(async () => {
  platform = await startTestPlatform();
  device = await allowAllDevice(platform, 'qos-all');
});
afterAll(async () => {
  await platform?.stop();
});

describe('QoS 0/1/2 over every transport and protocol version', () => {
  const cases: Array<[Transport, 4 | 5]> = [
    ['tcp', 4],
    ['tcp', 5],
    ['tls', 4],
    ['tls', 5],
    ['ws', 4],
    ['ws', 5],
  ];
  for (const [transport, protocolVersion] of cases) {
    it(`${transport} v${protocolVersion}: QoS 0, 1 and 2 round trip [MQTT-4.3.1-1, MQTT-4.3.2-1, MQTT-4.3.3-1]`, async () => {
      const tls = transport === 'tls' ? device : {};
      const sub = await connect(platform, { transport, protocolVersion, ...tls });
      const pub = await connect(platform, { transport, protocolVersion, ...tls });
      const got = collect(sub);
      const topic = `t/${uniqueId()}/x`;
      await sub.subscribeAsync(topic, { qos: 2 });
      await pub.publishAsync(topic, 'q0', { qos: 0 });
      await pub.publishAsync(topic, 'q1', { qos: 1 });
      await pub.publishAsync(topic, 'q2', { qos: 2 });
      await waitFor(() => got.length === 3, 3000, '3 messages');
      expect(got.map((m) => m.payload).sort()).toEqual(['q0', 'q1', 'q2']);
      const byPayload = Object.fromEntries(got.map((m) => [m.payload, m.packet.qos]));
      expect(byPayload).toEqual({ q0: 0, q1: 1, q2: 2 });
      await end(sub, pub);
    });
  }

  it('delivers at the minimum of published and granted QoS [MQTT-3.8.4-8]', async () => {
    const sub = await connect(platform);
    const pub = await connect(platform);
    const got = collect(sub);
    const topic = `t/${uniqueId()}`;
    await sub.subscribeAsync(topic, { qos: 1 });
    await pub.publishAsync(topic, 'x', { qos: 2 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.packet.qos).toBe(1);
    await end(sub, pub);
  });

  it('QoS 2 exactly once: a resent PUBLISH with the same id is not routed twice until PUBREL [MQTT-4.3.3-9, MQTT-4.3.3-10]', async () => {
    const topic = `t/${uniqueId()}`;
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(topic, { qos: 2 });
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    const publish = {
      cmd: 'publish' as const,
      topic,
      payload: Buffer.from('once'),
      qos: 2 as const,
      messageId: 9,
      retain: false,
    };
    raw.send({ ...publish, dup: false }, 5);
    raw.send({ ...publish, dup: true }, 5);
    await waitFor(() => raw.packets.filter((p) => p.cmd === 'pubrec').length === 2);
    raw.send({ cmd: 'pubrel', messageId: 9 }, 5);
    const comp = (await raw.next('pubcomp')) as { reasonCode?: number };
    expect(comp.reasonCode ?? 0).toBe(0);
    // A PUBREL for an unknown packet id gets PUBCOMP 0x92 (v5) [MQTT-5.0 §3.7.2.1].
    raw.send({ cmd: 'pubrel', messageId: 10 }, 5);
    await waitFor(() => raw.packets.filter((p) => p.cmd === 'pubcomp').length === 2);
    expect((raw.packets.filter((p) => p.cmd === 'pubcomp')[1] as { reasonCode?: number }).reasonCode).toBe(
      0x92,
    );
    // After release, the same id starts a new message.
    raw.send({ ...publish, payload: Buffer.from('twice'), dup: false }, 5);
    await waitFor(() => got.length === 2);
    expect(got.map((m) => m.payload)).toEqual(['once', 'twice']);
    raw.destroy();
    await end(sub);
  });

  it('outbound QoS 2: PUBLISH -> PUBREC -> PUBREL -> PUBCOMP, and a PUBREC failure code ends the exchange [MQTT-4.3.3-2..7]', async () => {
    const topic = `t/${uniqueId()}`;
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] }, 5);
    await raw.next('suback');
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'a', { qos: 2 });
    const p = (await raw.next('publish')) as { messageId: number; qos: number };
    expect(p.qos).toBe(2);
    raw.send({ cmd: 'pubrec', messageId: p.messageId }, 5);
    const rel = (await raw.next('pubrel')) as { messageId: number };
    expect(rel.messageId).toBe(p.messageId);
    raw.send({ cmd: 'pubcomp', messageId: p.messageId }, 5);
    await pub.publishAsync(topic, 'b', { qos: 2 });
    await waitFor(() => raw.packets.filter((x) => x.cmd === 'publish').length === 2);
    const p2 = raw.packets.filter((x) => x.cmd === 'publish')[1] as { messageId: number };
    raw.send({ cmd: 'pubrec', messageId: p2.messageId, reasonCode: 0x80 }, 5);
    await new Promise((r) => setTimeout(r, 50));
    expect(raw.packets.filter((x) => x.cmd === 'pubrel')).toHaveLength(1);
    raw.destroy();
    await end(pub);
  });
});
