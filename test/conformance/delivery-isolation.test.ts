/**
 * Last line of defence (issue 8): a delivery that cannot be encoded for one receiver is dropped for that
 * receiver only, counted as dropped{reason="encode_failed"}; the publisher, the other receivers and the
 * process are unaffected. Every client-sent property block is checked at decode, and since issue 9 the
 * platform-internal publish API (rules republish, HTTP data plane) refuses properties that no MQTT 5
 * encoder accepts with InvalidRequest, so no public path reaches the encoder with them any more: the
 * per-receiver isolation itself is driven below the API in src/mqtt/delivery-drops.test.ts.
 * [MQTT-4.13.1] errors are handled per connection.
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
  it('the platform publish API refuses properties that would not encode (InvalidRequest); nobody is disconnected', async () => {
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

    // A number where a string must be: mqtt-packet's generate() would throw for every MQTT 5 receiver,
    // so the platform publish API refuses it up front (issue 9), as it does per-delivery properties.
    const bad = { contentType: 42 } as unknown as PublishProperties;
    for (const properties of [bad, { topicAlias: 3 }, { subscriptionIdentifier: 5 }] as PublishProperties[]) {
      for (const qos of [0, 1] as const) {
        expect(() =>
          platform.broker.publish({
            topic,
            payload: Buffer.from(`bad${qos}`),
            qos,
            retain: false,
            properties,
          }),
        ).toThrow(expect.objectContaining({ code: 'InvalidRequest' }) as Error);
      }
    }
    platform.broker.publish({ topic, payload: Buffer.from('good'), qos: 1, retain: false });

    for (const g of got) await waitFor(() => g.some((m) => m.payload === 'good'), 3000, 'the good message');
    expect(got[0]!.map((m) => m.payload)).toEqual(['good']);
    expect(got[1]!.map((m) => m.payload)).toEqual(['good']);
    // Refused before routing: no receiver gets it, not even 3.1.1 ones (which carry no properties).
    expect(got[2]!.map((m) => m.payload)).toEqual(['good']);
    expect(closes).toBe(0);
    expect(
      await metric(platform, 'thingstead_mqtt_messages_dropped_total', { reason: 'encode_failed' }),
    ).toBe(before);
    await end(v5a, v5b, v4);
  });
});
