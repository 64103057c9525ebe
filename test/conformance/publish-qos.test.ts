/** PUBLISH and QoS 0/1/2 flows [MQTT-4.3], over TCP, TLS and WebSocket, MQTT 3.1.1 and 5.0. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { collect, connect, end, uniqueId, waitFor, type Transport } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
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
      const sub = await connect(platform, { transport, protocolVersion });
      const pub = await connect(platform, { transport, protocolVersion });
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
});
