/**
 * Last line of defence (issue 8): a delivery that cannot be encoded for one receiver is dropped for that
 * receiver only, counted as dropped{reason="encode_failed"}; the publisher, the other receivers and the
 * process are unaffected. Today every client-sent property block is checked at decode, so this drives
 * the platform-internal publish API (rules republish, HTTP data plane) with properties that no MQTT 5
 * encoder accepts. [MQTT-4.13.1] errors are handled per connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import type { PublishProperties } from '../../src/mqtt/index.js';
import { collect, connect, end, metric, uniqueId, waitFor } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

describe('a delivery that cannot be encoded affects only its receiver', () => {
  it('MQTT 5 receivers drop it (counted), 3.1.1 receivers get it, nobody is disconnected', async () => {
    const topic = `iso/${uniqueId()}`;
    const v5a = await connect(platform);
    const v5b = await connect(platform, { properties: { topicAliasMaximum: 4 } });
    const v4 = await connect(platform, { protocolVersion: 4 });
    const got = [collect(v5a), collect(v5b), collect(v4)];
    let closes = 0;
    for (const c of [v5a, v5b, v4]) {
      c.on('close', () => closes++);
      await c.subscribeAsync(topic, { qos: 1 });
    }
    const before = await metric(platform, 'thingstead_mqtt_messages_dropped_total', {
      reason: 'encode_failed',
    });

    // A number where a string must be: mqtt-packet's generate() throws for every MQTT 5 receiver.
    const bad = { contentType: 42 } as unknown as PublishProperties;
    for (const qos of [0, 1] as const) {
      expect(() =>
        platform.broker.publish({
          topic,
          payload: Buffer.from(`bad${qos}`),
          qos,
          retain: false,
          properties: bad,
        }),
      ).not.toThrow();
    }
    platform.broker.publish({ topic, payload: Buffer.from('good'), qos: 1, retain: false });

    for (const g of got) await waitFor(() => g.some((m) => m.payload === 'good'), 3000, 'the good message');
    expect(got[0]!.map((m) => m.payload)).toEqual(['good']);
    expect(got[1]!.map((m) => m.payload)).toEqual(['good']);
    // 3.1.1 carries no properties: the fast path encodes it.
    expect(got[2]!.map((m) => m.payload)).toEqual(['bad0', 'bad1', 'good']);
    expect(closes).toBe(0);
    expect(
      await metric(platform, 'thingstead_mqtt_messages_dropped_total', { reason: 'encode_failed' }),
    ).toBeGreaterThanOrEqual(before + 4);
    await end(v5a, v5b, v4);
  });
});
