/**
 * Packets that lack a part the spec requires are refused, on both protocol versions, and the broker
 * serves well-behaved clients on.
 * - [MQTT-3.8.3-2] (3.1.1 [MQTT-3.8.3-3]) a SUBSCRIBE payload MUST contain at least one topic filter, and
 *   [MQTT-3.10.3-2] an UNSUBSCRIBE payload at least one: a Protocol Error, v5 DISCONNECT 0x82; 3.1.1
 *   closes the network connection [MQTT-4.8.0-1].
 * - [MQTT-3.4.2, MQTT-3.6.2] PUBACK / PUBREL (and PUBREC, PUBCOMP) carry a 2-byte packet identifier:
 *   without one (remaining length 0 or 1) it is a Malformed Packet, v5 DISCONNECT 0x81; 3.1.1 closes.
 * - [MQTT-2.2.2.2] property blocks on SUBSCRIBE, UNSUBSCRIBE, acknowledgements, DISCONNECT and AUTH:
 *   identifiers allowed for the packet, values of their type, no duplicates.
 */
import type { IDisconnectPacket, IConnackPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RC, reasonName } from '../../src/mqtt/reason-codes.js';
import { RawClient, collect, connect, end, uniqueId, waitFor } from './helpers.js';
import { P, connect5, frame, props, str, u16 } from './raw-packets.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

/** A raw client past CONNACK on the given protocol version. */
async function rawConnected(version: 4 | 5): Promise<RawClient> {
  const raw = await RawClient.open(platform, version);
  if (version === 5) raw.write(connect5({ clientId: uniqueId('raw') }));
  else
    raw.send(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: uniqueId('raw'),
        clean: true,
        keepalive: 30,
      },
      4,
    );
  const connack = (await raw.next('connack')) as IConnackPacket;
  expect(connack.reasonCode ?? connack.returnCode).toBe(0);
  return raw;
}

/** The broker answers a well-behaved client with a round trip. */
async function stillServes(): Promise<void> {
  const c = await connect(platform);
  const got = collect(c);
  const topic = `alive/${uniqueId()}`;
  await c.subscribeAsync(topic, { qos: 1 });
  await c.publishAsync(topic, 'ok', { qos: 1 });
  await waitFor(() => got.length === 1);
  await end(c);
}

const expectCode = (got: number | undefined, want: number) =>
  expect(reasonName(got ?? -1)).toBe(reasonName(want));

interface Case {
  readonly name: string;
  readonly bytes: Buffer;
  /** v5 DISCONNECT reason code; on 3.1.1 the connection is closed without one. */
  readonly code: number;
}

const v4Cases: Case[] = [
  {
    name: '[MQTT-3.8.3-3] SUBSCRIBE without topic filters',
    bytes: frame(0x82, u16(1)),
    code: RC.PROTOCOL_ERROR,
  },
  {
    name: '[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters',
    bytes: frame(0xa2, u16(1)),
    code: RC.PROTOCOL_ERROR,
  },
  { name: '[MQTT-3.4.2] PUBACK with remaining length 0', bytes: Buffer.from([0x40, 0]), code: 0x81 },
  { name: '[MQTT-3.4.2] PUBACK with remaining length 1', bytes: Buffer.from([0x40, 1, 0]), code: 0x81 },
  { name: '[MQTT-3.6.2] PUBREL with remaining length 0', bytes: Buffer.from([0x62, 0]), code: 0x81 },
  { name: '[MQTT-3.6.2] PUBREL with remaining length 1', bytes: Buffer.from([0x62, 1, 0]), code: 0x81 },
  { name: '[MQTT-3.5.2] PUBREC with remaining length 0', bytes: Buffer.from([0x50, 0]), code: 0x81 },
  { name: '[MQTT-3.7.2] PUBCOMP with remaining length 1', bytes: Buffer.from([0x70, 1, 0]), code: 0x81 },
];

const v5Cases: Case[] = [
  {
    name: '[MQTT-3.8.3-2] SUBSCRIBE without topic filters',
    bytes: frame(0x82, u16(1), props()),
    code: RC.PROTOCOL_ERROR,
  },
  {
    name: '[MQTT-3.10.3-2] UNSUBSCRIBE without topic filters',
    bytes: frame(0xa2, u16(1), props()),
    code: RC.PROTOCOL_ERROR,
  },
  ...v4Cases.slice(2).map((c) => ({ ...c, code: RC.MALFORMED_PACKET })),
  {
    name: '[MQTT-2.2.2.2] SUBSCRIBE with a PUBLISH-only property',
    bytes: frame(0x82, u16(1), props(P.contentType('x')), str('a'), Buffer.from([1])),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] SUBSCRIBE with two subscription identifiers',
    bytes: frame(
      0x82,
      u16(1),
      props(Buffer.concat([P.subscriptionId(1), P.subscriptionId(2)])),
      str('a'),
      Buffer.from([1]),
    ),
    code: RC.PROTOCOL_ERROR,
  },
  {
    name: '[MQTT-1.5.5] SUBSCRIBE with a 5-byte subscription identifier',
    bytes: frame(0x82, u16(1), props([0x0b, 0xff, 0xff, 0xff, 0xff, 0x7f]), str('a'), Buffer.from([1])),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-3.8.2.1.2] SUBSCRIBE with subscription identifier 0',
    bytes: frame(0x82, u16(1), props(P.subscriptionId(0)), str('a'), Buffer.from([1])),
    code: RC.PROTOCOL_ERROR,
  },
  {
    name: '[MQTT-2.2.2.2] UNSUBSCRIBE with a subscription identifier',
    bytes: frame(0xa2, u16(1), props(P.subscriptionId(3)), str('a')),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] UNSUBSCRIBE with a truncated user property',
    bytes: frame(0xa2, u16(1), props([0x26, 0x00, 0x01, 0x61, 0x00, 0x09]), str('a')),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] PUBACK with a duplicated reason string',
    bytes: frame(
      0x40,
      u16(1),
      Buffer.from([0]),
      props(Buffer.concat([P.reasonString('a'), P.reasonString('b')])),
    ),
    code: RC.PROTOCOL_ERROR,
  },
  {
    name: '[MQTT-2.2.2.2] PUBREL with a content type',
    bytes: frame(0x62, u16(1), Buffer.from([0]), props(P.contentType('x'))),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] DISCONNECT with a truncated session expiry interval',
    bytes: frame(0xe0, Buffer.from([0]), props([0x11, 0, 0])),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] DISCONNECT with a will delay interval',
    bytes: frame(0xe0, Buffer.from([0]), props(P.willDelay(1))),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] AUTH with a reason string that is not UTF-8',
    bytes: frame(0xf0, Buffer.from([0x18]), props(Buffer.from([0x1f, 0x00, 0x01, 0xff]))),
    code: RC.MALFORMED_PACKET,
  },
  {
    name: '[MQTT-2.2.2.2] AUTH with a property block running past the packet',
    bytes: frame(0xf0, Buffer.from([0x18]), props(Buffer.from([0x15, 0x00, 0x01, 0x61]), 40)),
    code: RC.MALFORMED_PACKET,
  },
];
describe('packets missing required parts, MQTT 3.1.1: the connection is closed [MQTT-4.8.0-1]', () => {
  for (const c of v4Cases) {
    it(c.name, async () => {
      const raw = await rawConnected(4);
      raw.write(c.bytes);
      await raw.waitClosed();
      // Nothing was acknowledged for it.
      expect(raw.packets.filter((p) => p.cmd !== 'connack')).toEqual([]);
      await stillServes();
    });
  }
});

describe('packets missing required parts or with bad properties, MQTT 5: DISCONNECT with the reason', () => {
  for (const c of v5Cases) {
    it(`${c.name}: ${reasonName(c.code)}`, async () => {
      const raw = await rawConnected(5);
      raw.write(c.bytes);
      const d = (await raw.next('disconnect')) as IDisconnectPacket;
      expectCode(d.reasonCode, c.code);
      await raw.waitClosed();
      expect(raw.packets.map((p) => p.cmd)).toEqual(['connack', 'disconnect']);
      await stillServes();
    });
  }

  it('a SUBSCRIBE with a valid subscription identifier and user properties is still granted', async () => {
    const raw = await rawConnected(5);
    raw.write(
      frame(
        0x82,
        u16(5),
        props(Buffer.concat([P.subscriptionId(268_435_455), P.userProperty('k', 'v')])),
        str('a/b'),
        Buffer.from([1]),
      ),
    );
    const suback = await raw.next('suback');
    expect((suback as { granted: number[] }).granted).toEqual([1]);
    raw.destroy();
  });
});
