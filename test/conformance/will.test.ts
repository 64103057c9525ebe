/** Will messages [MQTT-3.1.2-8..18, MQTT-3.1.3-9] including the v5 Will Delay Interval. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { collect, connect, end, uniqueId, waitFor } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

async function watcher(topic: string) {
  const w = await connect(platform);
  const got = collect(w);
  await w.subscribeAsync(topic, { qos: 1 });
  return { w, got };
}

describe('wills', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`v${protocolVersion}: published when the connection drops without DISCONNECT [MQTT-3.1.2-8]`, async () => {
      const topic = `will/${uniqueId()}`;
      const { w, got } = await watcher(topic);
      const c = await connect(platform, {
        protocolVersion,
        will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      c.stream.destroy();
      await waitFor(() => got.length === 1);
      expect(got[0]!.payload).toBe('gone');
      await end(w, c);
    });

    it(`v${protocolVersion}: not published after a normal DISCONNECT [MQTT-3.1.2-10, MQTT-3.14.4-3]`, async () => {
      const topic = `will/${uniqueId()}`;
      const { w, got } = await watcher(topic);
      const c = await connect(platform, {
        protocolVersion,
        will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      await c.endAsync();
      const probe = await connect(platform);
      await probe.publishAsync(topic, 'probe', { qos: 1 });
      await waitFor(() => got.length === 1);
      expect(got[0]!.payload).toBe('probe');
      await end(w, probe);
    });
  }

  it('v5: DISCONNECT 0x04 (with will message) publishes the will [MQTT-5.0 §3.14.2.1]', async () => {
    const topic = `will/${uniqueId()}`;
    const { w, got } = await watcher(topic);
    const c = await connect(platform, {
      will: { topic, payload: Buffer.from('w04'), qos: 0, retain: false },
    });
    await c.endAsync(false, { reasonCode: 0x04 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('w04');
    await end(w);
  });

  it('v5: Will Delay Interval delays the will; reconnecting in time cancels it [MQTT-3.1.3-9]', async () => {
    const topic = `will/${uniqueId()}`;
    const clientId = uniqueId('wd');
    const { w, got } = await watcher(topic);
    const will = {
      topic,
      payload: Buffer.from('late'),
      qos: 1 as const,
      retain: false,
      properties: { willDelayInterval: 1 },
    };
    const props = { sessionExpiryInterval: 30 };
    const c = await connect(platform, { clientId, clean: false, properties: props, will });
    c.stream.destroy();
    await waitFor(() => !platform.broker.isConnected(clientId));
    const back = await connect(platform, { clientId, clean: false, properties: props });
    await new Promise((r) => setTimeout(r, 1300));
    expect(got).toEqual([]);
    // Now drop it again and let the delay pass.
    const c2 = await connect(platform, { clientId, clean: false, properties: props, will });
    const t0 = Date.now();
    c2.stream.destroy();
    await waitFor(() => got.length === 1, 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await end(w, back, c2);
  });

  it('v5: the will is published when the session ends before the delay [MQTT-3.1.2-8]', async () => {
    const topic = `will/${uniqueId()}`;
    const { w, got } = await watcher(topic);
    const c = await connect(platform, {
      properties: { sessionExpiryInterval: 0 },
      will: {
        topic,
        payload: Buffer.from('ended'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 60 },
      },
    });
    c.stream.destroy();
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('ended');
    await end(w);
  });

  it('a retained will is retained [MQTT-3.1.2-17]', async () => {
    const topic = `will/${uniqueId()}`;
    const c = await connect(platform, {
      will: { topic, payload: Buffer.from('kept'), qos: 1, retain: true },
    });
    c.stream.destroy();
    await waitFor(() => platform.broker.retained(topic));
    await end(c);
  });
});
