/**
 * Corrupted MQTT 5 property blocks on a CONNECT's will, a PUBLISH (online and offline persistent
 * receivers, QoS 1) and a retained PUBLISH are refused with the spec's reason code before they touch a
 * will, a session queue or the retained store, and the receivers on a matching filter are served on.
 *
 * [MQTT-2.2.2.2] an identifier not valid for the packet type, or a value not of the specified data type,
 * is a Malformed Packet (0x81); including a property more than once (User Property aside), or a Byte
 * outside its allowed values, is a Protocol Error (0x82). [MQTT-1.5.4-1, MQTT-1.5.4-2] ill-formed UTF-8
 * or U+0000 in a UTF-8 string is malformed. [MQTT-3.3.2-14] a Response Topic is a Topic Name (no
 * wildcards). [MQTT-4.13.1] such a packet ends the connection: CONNACK (before CONNACK) or DISCONNECT
 * with the reason code.
 * Found by an attack: a will or stored PUBLISH with a truncated property made re-encoding throw for
 * every MQTT 5 subscriber, killing the process (issue 8).
 */
import type { MqttClient } from 'mqtt';
import type { IConnackPacket, IDisconnectPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RC, reasonName } from '../../src/mqtt/reason-codes.js';
import { RawClient, collect, connect, end, prepare, uniqueId, waitFor, type Received } from './helpers.js';
import { P, connect5, props, publish5, u16 } from './raw-packets.js';

let platform: TestPlatform;
/** A well-behaved MQTT 5 client subscribed to every topic the tests poison. */
let watcher: MqttClient;
let seen: Received[];

beforeAll(async () => {
  platform = await startTestPlatform();
  watcher = await connect(platform);
  seen = collect(watcher);
  await watcher.subscribeAsync('poison/#', { qos: 1 });
});
afterAll(async () => {
  await end(watcher);
  await platform?.stop();
});

interface Corruption {
  readonly name: string;
  /** The raw property block (length included). */
  readonly block: Buffer;
  readonly code: number;
}

const cat = (...b: Buffer[]) => Buffer.concat(b);
/** A User Property whose value claims 9 bytes where the block has none: mqtt-packet reads null. */
const truncatedPair = Buffer.from([0x26, 0x00, 0x01, 0x61, 0x00, 0x09]);

/** Corruptions valid in both PUBLISH and will property blocks (their allowed sets are the same). */
const corruptions: Corruption[] = [
  { name: 'truncated user property value', block: props(truncatedPair), code: RC.MALFORMED_PACKET },
  {
    name: 'property block longer than the packet',
    block: props(P.contentType('x'), 200),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: 'property longer than its block',
    block: props(P.messageExpiry(5), 3),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: 'a CONNECT-only property',
    block: props(P.sessionExpiry(5)),
    code: RC.MALFORMED_PACKET,
  },
  { name: 'a CONNACK-only property', block: props(P.maximumQos(1)), code: RC.MALFORMED_PACKET },
  { name: 'an unknown identifier', block: props([0x7f, 0x00]), code: RC.MALFORMED_PACKET },
  {
    name: 'content type twice',
    block: props(cat(P.contentType('a'), P.contentType('b'))),
    code: RC.PROTOCOL_ERROR,
  },
  {
    name: 'correlation data twice',
    block: props(cat(P.correlationData(Buffer.from('a')), P.correlationData(Buffer.from('b')))),
    code: RC.PROTOCOL_ERROR,
  },
  { name: 'payload format indicator 2', block: props(P.payloadFormat(2)), code: RC.PROTOCOL_ERROR },
  {
    name: 'content type not UTF-8',
    block: props(P.contentType(Buffer.from([0xff, 0xfe]))),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: 'content type with U+0000',
    block: props(P.contentType(Buffer.from([0x61, 0x00]))),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: 'user property name not UTF-8',
    block: props(P.userProperty(Buffer.from([0xc3]), 'v')),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: 'response topic with a wildcard',
    block: props(P.responseTopic('reply/#')),
    code: RC.PROTOCOL_ERROR,
  },
];

/** The watcher is still connected and receives a fresh message on `topic` (and nothing else new). */
async function watcherServed(topic: string, before: number): Promise<void> {
  const probe = await connect(platform);
  await probe.publishAsync(topic, 'probe', { qos: 1 });
  await end(probe);
  await waitFor(() => seen.length > before, 3000, 'the probe at the watcher');
  expect(watcher.connected).toBe(true);
  expect(seen.slice(before).map((m) => m.payload)).toEqual(['probe']);
}

const expectCode = (got: number | undefined, want: number) =>
  expect(reasonName(got ?? -1)).toBe(reasonName(want));

describe('corrupted will properties are refused at CONNECT [MQTT-2.2.2.2, MQTT-5.0 §3.1.3.2]', () => {
  for (const c of corruptions) {
    it(`${c.name}: CONNACK ${reasonName(c.code)}, no will is ever published`, async () => {
      const topic = `poison/will/${uniqueId()}`;
      const before = seen.length;
      const raw = await RawClient.open(platform, 5);
      raw.write(
        connect5({
          clientId: uniqueId('will'),
          will: { topic, payload: Buffer.from('poison'), qos: 1, properties: c.block },
        }),
      );
      const connack = (await raw.next('connack')) as IConnackPacket;
      expectCode(connack.reasonCode, c.code);
      await raw.waitClosed();
      await watcherServed(topic, before);
    });
  }
});

describe('corrupted PUBLISH properties are refused [MQTT-2.2.2.2, MQTT-4.13.1]', () => {
  /** A raw v5 publisher past CONNACK. */
  async function publisher(): Promise<RawClient> {
    const raw = await RawClient.open(platform, 5);
    raw.write(connect5({ clientId: uniqueId('pub') }));
    await raw.next('connack');
    return raw;
  }

  for (const c of corruptions) {
    it(`${c.name}: DISCONNECT ${reasonName(c.code)}, no PUBACK, not routed, not queued, not retained`, async () => {
      const topic = `poison/pub/${uniqueId()}`;
      // A persistent MQTT 5 session that is offline while the poisoned PUBLISH arrives.
      const clientId = uniqueId('offline');
      const opts = { clientId, clean: false, properties: { sessionExpiryInterval: 300 } };
      const offline = await connect(platform, opts);
      await offline.subscribeAsync(topic, { qos: 1 });
      await offline.endAsync();

      const before = seen.length;
      for (const retain of [false, true]) {
        const raw = await publisher();
        raw.write(publish5({ topic, payload: 'poison', qos: 1, packetId: 7, retain, properties: c.block }));
        const d = (await raw.next('disconnect')) as IDisconnectPacket;
        expectCode(d.reasonCode, c.code);
        await raw.waitClosed();
        expect(raw.packets.some((p) => p.cmd === 'puback')).toBe(false);
      }
      await watcherServed(topic, before);

      // Not retained: a new subscriber gets no retained message; then its own probe.
      const late = await connect(platform);
      const lateGot = collect(late);
      await late.subscribeAsync(topic, { qos: 1 });
      await late.publishAsync(topic, 'late-probe', { qos: 1 });
      await waitFor(() => lateGot.length > 0);
      expect(lateGot.map((m) => m.payload)).toEqual(['late-probe']);
      await end(late);

      // Not queued: the persistent session comes back to the probes only.
      const back = prepare(platform, opts);
      const backGot = collect(back);
      back.connect();
      await waitFor(() => backGot.length >= 2, 3000, 'the queued probes');
      expect(backGot.map((m) => m.payload)).toEqual(['probe', 'late-probe']);
      await end(back);
    });
  }

  it('a valid property block with every PUBLISH property is still accepted and delivered', async () => {
    const topic = `poison/ok/${uniqueId()}`;
    const before = seen.length;
    const raw = await publisher();
    const block = props(
      cat(
        P.payloadFormat(1),
        P.messageExpiry(60),
        P.contentType('text/plain'),
        P.responseTopic('reply/x'),
        P.correlationData(Buffer.from('c')),
        P.userProperty('a', '1'),
        P.userProperty('a', '2'),
      ),
    );
    raw.write(publish5({ topic, payload: 'fine', qos: 1, packetId: 9, properties: block }));
    await raw.next('puback');
    await waitFor(() => seen.length > before);
    const m = seen[before]!;
    expect(m.payload).toBe('fine');
    expect(m.packet.properties?.userProperties).toEqual({ a: ['1', '2'] });
    expect(m.packet.properties?.contentType).toBe('text/plain');
    raw.destroy();
  });

  it('a topic alias 0 is still answered with Topic Alias Invalid [MQTT-3.3.2-8]', async () => {
    const raw = await publisher();
    raw.write(publish5({ topic: 'poison/alias', payload: 'x', properties: props(P.topicAlias(0)) }));
    const d = (await raw.next('disconnect')) as IDisconnectPacket;
    expectCode(d.reasonCode, RC.TOPIC_ALIAS_INVALID);
  });

  it('a property block on a PUBACK that overruns the packet is malformed [MQTT-3.4.2.2]', async () => {
    const raw = await publisher();
    raw.write(Buffer.concat([Buffer.from([0x40, 0x05]), u16(1), Buffer.from([0x00, 0x09, 0x1f])]));
    const d = (await raw.next('disconnect')) as IDisconnectPacket;
    expectCode(d.reasonCode, RC.MALFORMED_PACKET);
  });
});
