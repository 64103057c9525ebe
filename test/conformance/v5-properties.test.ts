/**
 * MQTT 5 properties end to end: message expiry, topic aliases both ways, subscription identifiers,
 * no local, request/response, user properties, content type, payload format indicator, reason strings.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, uniqueId, waitFor } from './helpers.js';
import { RC } from '../../src/mqtt/reason-codes.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

describe('MQTT 5 properties', () => {
  it('user properties, content type, response topic and correlation data pass through [MQTT-3.3.2-15..20]', async () => {
    const topic = `v5/${uniqueId()}`;
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(topic);
    const pub = await connect(platform);
    await pub.publishAsync(topic, '{"a":1}', {
      qos: 1,
      properties: {
        userProperties: { k: 'v', multi: ['1', '2'] },
        contentType: 'application/json',
        responseTopic: `${topic}/reply`,
        correlationData: Buffer.from('corr-1'),
        payloadFormatIndicator: true,
      },
    });
    await waitFor(() => got.length === 1);
    const p = got[0]!.packet.properties!;
    expect(p.userProperties).toEqual({ k: 'v', multi: ['1', '2'] });
    expect(p.contentType).toBe('application/json');
    expect(p.responseTopic).toBe(`${topic}/reply`);
    expect(Buffer.from(p.correlationData!).toString()).toBe('corr-1');
    expect(p.payloadFormatIndicator).toBe(true);
    await end(sub, pub);
  });

  it('request/response: a responder answers on the Response Topic with the Correlation Data [MQTT-4.10]', async () => {
    const reqTopic = `svc/${uniqueId()}`;
    const responder = await connect(platform);
    await responder.subscribeAsync(reqTopic);
    responder.on('message', (_t, payload, packet) => {
      void responder.publishAsync(packet.properties!.responseTopic!, `re:${payload.toString()}`, {
        qos: 1,
        properties: { correlationData: packet.properties!.correlationData! },
      });
    });
    const requester = await connect(platform);
    const got = collect(requester);
    await requester.subscribeAsync(`${reqTopic}/reply`);
    await requester.publishAsync(reqTopic, 'ping', {
      qos: 1,
      properties: { responseTopic: `${reqTopic}/reply`, correlationData: Buffer.from('id-9') },
    });
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('re:ping');
    expect(Buffer.from(got[0]!.packet.properties!.correlationData!).toString()).toBe('id-9');
    await end(responder, requester);
  });

  it('payload format indicator with invalid UTF-8: PUBACK 0x99 [MQTT-3.3.2-4]', async () => {
    const c = await connect(platform);
    await expect(
      c.publishAsync(`v5/${uniqueId()}`, Buffer.from([0xff, 0xfe]), {
        qos: 1,
        properties: { payloadFormatIndicator: true },
      }),
    ).rejects.toThrow(/[Pp]ayload format/);
    await end(c);
  });

  it('message expiry: expired messages are not delivered; the remaining interval is sent [MQTT-3.3.2-5, MQTT-3.3.2-6]', async () => {
    const clientId = uniqueId('exp');
    const topic = `v5/${clientId}`;
    const a = await connect(platform, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } });
    await a.subscribeAsync(topic, { qos: 1 });
    await end(a);
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync(topic, 'long', { qos: 1, properties: { messageExpiryInterval: 100 } });
    await new Promise((r) => setTimeout(r, 1100));
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId,
        clean: false,
        keepalive: 10,
        properties: { sessionExpiryInterval: 60 },
      },
      5,
    );
    await raw.next('connack');
    const p = (await raw.next('publish')) as {
      payload: Buffer;
      properties?: { messageExpiryInterval?: number };
    };
    expect(p.payload.toString()).toBe('long');
    expect(p.properties?.messageExpiryInterval).toBeLessThanOrEqual(99);
    await new Promise((r) => setTimeout(r, 50));
    expect(raw.packets.filter((x) => x.cmd === 'publish')).toHaveLength(1);
    raw.destroy();
    await end(pub);
  });

  it('client-to-server topic aliases [MQTT-3.3.2-7..12]; alias above the maximum is 0x94', async () => {
    const topic = `v5/${uniqueId()}`;
    const sub = await connect(platform);
    const got = collect(sub);
    await sub.subscribeAsync(topic);
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    const ack = (await raw.next('connack')) as { properties: { topicAliasMaximum: number } };
    expect(ack.properties.topicAliasMaximum).toBeGreaterThan(0);
    raw.send(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from('1'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { topicAlias: 3 },
      },
      5,
    );
    raw.send(
      {
        cmd: 'publish',
        topic: '',
        payload: Buffer.from('2'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { topicAlias: 3 },
      },
      5,
    );
    await waitFor(() => got.length === 2);
    expect(got.map((m) => [m.topic, m.payload])).toEqual([
      [topic, '1'],
      [topic, '2'],
    ]);
    raw.send(
      {
        cmd: 'publish',
        topic,
        payload: Buffer.from('3'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { topicAlias: 60000 },
      },
      5,
    );
    const d = (await raw.next('disconnect')) as { reasonCode: number };
    expect(d.reasonCode).toBe(RC.TOPIC_ALIAS_INVALID);
    await end(sub);
  });

  it('server-to-client topic aliases when the client allows them', async () => {
    const topic = `v5/${uniqueId()}`;
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        properties: { topicAliasMaximum: 5 },
      },
      5,
    );
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] }, 5);
    await raw.next('suback');
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'a', { qos: 1 });
    await pub.publishAsync(topic, 'b', { qos: 1 });
    await waitFor(() => raw.packets.filter((p) => p.cmd === 'publish').length === 2);
    const [p1, p2] = raw.packets.filter((p) => p.cmd === 'publish') as Array<{
      topic: string;
      properties?: { topicAlias?: number };
    }>;
    expect(p1!.topic).toBe(topic);
    expect(p1!.properties?.topicAlias).toBe(1);
    expect(p2!.topic).toBe('');
    expect(p2!.properties?.topicAlias).toBe(1);
    raw.destroy();
    await end(pub);
  });

  it('subscription identifiers are returned with matching messages [MQTT-3.3.4-3, MQTT-5.0 §3.8.2.1.2]', async () => {
    const base = `v5/${uniqueId()}`;
    const c = await connect(platform);
    const got = collect(c);
    await c.subscribeAsync(`${base}/+`, { qos: 0, properties: { subscriptionIdentifier: 11 } });
    await c.subscribeAsync(`${base}/#`, { qos: 0, properties: { subscriptionIdentifier: 22 } });
    await c.publishAsync(`${base}/x`, 'm', { qos: 1 });
    await waitFor(() => got.length === 1);
    const ids = got[0]!.packet.properties!.subscriptionIdentifier;
    expect([ids].flat().sort()).toEqual([11, 22]);
    await end(c);
  });

  it('no local: a client does not receive its own messages [MQTT-3.8.3-3]', async () => {
    const topic = `v5/${uniqueId()}`;
    const c = await connect(platform);
    const got = collect(c);
    await c.subscribeAsync(topic, { qos: 0, nl: true });
    const other = await connect(platform);
    await c.publishAsync(topic, 'mine', { qos: 1 });
    await other.publishAsync(topic, 'theirs', { qos: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]!.payload).toBe('theirs');
    await end(c, other);
  });

  it('maximum packet size: the server never sends a packet over the client maximum; dropped and counted [MQTT-3.1.2-24]', async () => {
    const topic = `v5/${uniqueId()}`;
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        properties: { maximumPacketSize: 100 },
      },
      5,
    );
    await raw.next('connack');
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] }, 5);
    await raw.next('suback');
    const pub = await connect(platform);
    await pub.publishAsync(topic, 'x'.repeat(500), { qos: 1 });
    await pub.publishAsync(topic, 'small', { qos: 1 });
    const p = (await raw.next('publish')) as { payload: Buffer };
    expect(p.payload.toString()).toBe('small');
    raw.destroy();
    await end(pub);
  });

  it('CONNACK announces limits: receive maximum, maximum packet size, topic alias maximum [MQTT-5.0 §3.2.2.3]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send({ cmd: 'connect', protocolVersion: 5, clientId: uniqueId(), clean: true, keepalive: 10 }, 5);
    const ack = (await raw.next('connack')) as unknown as { properties: Record<string, number> };
    expect(ack.properties.receiveMaximum).toBe(platform.config.limits.maxInflight);
    expect(ack.properties.maximumPacketSize).toBe(platform.config.limits.maxPacketBytes);
    raw.destroy();
  });

  it('reason strings are omitted when Request Problem Information is 0 [MQTT-3.1.2-29]', async () => {
    const raw = await RawClient.open(platform, 5);
    raw.send(
      {
        cmd: 'connect',
        protocolVersion: 5,
        clientId: uniqueId(),
        clean: true,
        keepalive: 10,
        properties: { requestProblemInformation: false },
      },
      5,
    );
    await raw.next('connack');
    raw.send(
      { cmd: 'publish', topic: 'a/#', payload: Buffer.from('x'), qos: 0, dup: false, retain: false },
      5,
    );
    const d = (await raw.next('disconnect')) as { properties?: { reasonString?: string } };
    expect(d.properties?.reasonString).toBeUndefined();
  });
});
