/**
 * Unit tests for the v5 property checks in codec.ts: checkFrameProperties on raw frames and
 * checkPublishProperties on decoded (e.g. stored) properties [MQTT-2.2.2.2, MQTT-1.5.4, MQTT-1.5.5].
 */
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { checkFrameProperties, checkPublishProperties } from './codec.js';
import { RC } from './reason-codes.js';

const gen = (p: Record<string, unknown>) =>
  mqttPacket.generate(p as unknown as Packet, { protocolVersion: 5 });

/** A QoS 1 PUBLISH on topic `t` with the raw property block content `content`, declared as `len`. */
function publishWith(content: number[], len = content.length): Buffer {
  const body = Buffer.from([0, 1, 0x74, 0, 1, len, ...content, 0x68, 0x69]);
  return Buffer.concat([Buffer.from([0x32, body.length]), body]);
}

describe('checkFrameProperties', () => {
  it('accepts what mqtt-packet generates for every packet type a client sends', () => {
    const packets: Array<Record<string, unknown>> = [
      {
        cmd: 'connect',
        protocolVersion: 5,
        protocolId: 'MQTT',
        clientId: 'c',
        clean: true,
        keepalive: 10,
        properties: {
          sessionExpiryInterval: 5,
          receiveMaximum: 10,
          maximumPacketSize: 1000,
          topicAliasMaximum: 3,
          requestResponseInformation: true,
          requestProblemInformation: false,
          userProperties: { a: ['1', '2'] },
          authenticationMethod: 'm',
          authenticationData: Buffer.from('d'),
        },
        will: {
          topic: 'w',
          payload: Buffer.from('p'),
          qos: 1,
          retain: true,
          properties: {
            willDelayInterval: 3,
            payloadFormatIndicator: true,
            messageExpiryInterval: 9,
            contentType: 'c',
            responseTopic: 'r/t',
            correlationData: Buffer.from('x'),
            userProperties: { k: 'v' },
          },
        },
        username: 'u',
        password: Buffer.from('p'),
      },
      {
        cmd: 'publish',
        topic: 't',
        payload: Buffer.from('x'),
        qos: 2,
        messageId: 3,
        properties: { topicAlias: 2, contentType: 'ct', userProperties: { a: 'b' } },
      },
      {
        cmd: 'puback',
        messageId: 1,
        reasonCode: 0x10,
        properties: { reasonString: 'r', userProperties: { a: 'b' } },
      },
      { cmd: 'pubrel', messageId: 1, reasonCode: 0x92, properties: { reasonString: 'r' } },
      {
        cmd: 'subscribe',
        messageId: 1,
        properties: { subscriptionIdentifier: 268_435_455 },
        subscriptions: [{ topic: 'a', qos: 0 }],
      },
      {
        cmd: 'unsubscribe',
        messageId: 1,
        properties: { userProperties: { a: 'b' } },
        unsubscriptions: ['a'],
      },
      {
        cmd: 'disconnect',
        reasonCode: 4,
        properties: { sessionExpiryInterval: 0, reasonString: 'bye', serverReference: 's' },
      },
      {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: { authenticationMethod: 'm', authenticationData: Buffer.from('d') },
      },
      { cmd: 'pingreq' },
    ];
    for (const p of packets) expect(checkFrameProperties(gen(p)), String(p.cmd)).toBeNull();
  });

  const cases: Array<[string, Buffer, number]> = [
    ['truncated string', publishWith([0x03, 0, 5, 0x61]), RC.MALFORMED_PACKET],
    ['block past the packet', publishWith([0x03, 0, 1, 0x61], 30), RC.MALFORMED_PACKET],
    ['value past its block', publishWith([0x02, 0, 0, 0, 5], 3), RC.MALFORMED_PACKET],
    ['CONNECT-only property', publishWith([0x11, 0, 0, 0, 5]), RC.MALFORMED_PACKET],
    ['unknown identifier', publishWith([0x7f, 0]), RC.MALFORMED_PACKET],
    ['identifier 0', publishWith([0x00, 0]), RC.MALFORMED_PACKET],
    ['duplicate content type', publishWith([0x03, 0, 1, 0x61, 0x03, 0, 1, 0x62]), RC.PROTOCOL_ERROR],
    ['payload format indicator 2', publishWith([0x01, 2]), RC.PROTOCOL_ERROR],
    ['ill-formed UTF-8', publishWith([0x03, 0, 1, 0xff]), RC.MALFORMED_PACKET],
    ['U+0000', publishWith([0x03, 0, 1, 0x00]), RC.MALFORMED_PACKET],
    ['response topic wildcard', publishWith([0x08, 0, 1, 0x23]), RC.PROTOCOL_ERROR],
    ['empty response topic', publishWith([0x08, 0, 0]), RC.PROTOCOL_ERROR],
    ['overlong subscription identifier', publishWith([0x0b, 0x80, 0x00]), RC.MALFORMED_PACKET],
    ['subscription identifier 0', publishWith([0x0b, 0x00]), RC.PROTOCOL_ERROR],
    ['truncated user property value', publishWith([0x26, 0, 1, 0x61, 0, 9]), RC.MALFORMED_PACKET],
  ];
  for (const [name, frame, code] of cases) {
    it(`refuses a PUBLISH with ${name} (0x${code.toString(16)})`, () => {
      expect(checkFrameProperties(frame)?.code).toBe(code);
    });
  }

  it('two User Properties with the same name are allowed [MQTT-3.3.2-18]', () => {
    expect(checkFrameProperties(publishWith([0x26, 0, 1, 0x61, 0, 0, 0x26, 0, 1, 0x61, 0, 0]))).toBeNull();
  });

  it('refuses Authentication Data without an Authentication Method on CONNECT', () => {
    const c = gen({
      cmd: 'connect',
      protocolVersion: 5,
      protocolId: 'MQTT',
      clientId: 'c',
      clean: true,
      keepalive: 0,
      properties: { authenticationData: Buffer.from('d') },
    });
    expect(checkFrameProperties(c)?.code).toBe(RC.PROTOCOL_ERROR);
  });

  it('checks will properties against the will set (no Session Expiry Interval there)', () => {
    const c = gen({
      cmd: 'connect',
      protocolVersion: 5,
      protocolId: 'MQTT',
      clientId: 'c',
      clean: true,
      keepalive: 0,
      will: {
        topic: 'w',
        payload: Buffer.from('p'),
        qos: 0,
        retain: false,
        properties: { willDelayInterval: 1 },
      },
    });
    // Swap the will's Will Delay Interval identifier (0x18) for Session Expiry Interval (0x11).
    const at = c.indexOf(0x18, 12);
    c[at] = 0x11;
    expect(checkFrameProperties(c)).toMatchObject({ code: RC.MALFORMED_PACKET });
  });
});

describe('checkPublishProperties (stored or decoded properties)', () => {
  it('accepts valid properties and undefined', () => {
    expect(checkPublishProperties(undefined)).toBeNull();
    expect(
      checkPublishProperties({
        payloadFormatIndicator: true,
        messageExpiryInterval: 10,
        contentType: 'a',
        responseTopic: 'r',
        correlationData: Buffer.from('c'),
        userProperties: { a: 'b', m: ['1', '2'] },
        subscriptionIdentifier: [1, 2],
      }),
    ).toBeNull();
  });

  it.each([
    [{ contentType: null }],
    [{ contentType: ['a', 'b'] }],
    [{ correlationData: [Buffer.from('a')] }],
    [{ correlationData: 'not a buffer' }],
    [{ messageExpiryInterval: -1 }],
    [{ messageExpiryInterval: [1, 2] }],
    [{ payloadFormatIndicator: 2 }],
    [{ userProperties: { a: null } }],
    [{ userProperties: { a: [] } }],
    [{ responseTopic: 'a/+' }],
    [{ contentType: 'a\u0000' }],
    [{ contentType: '\ud800' }],
    [{ subscriptionIdentifier: 0 }],
    [{ topicAlias: 0 }],
    [{ sessionExpiryInterval: 3 }],
    ['a string'],
  ])('refuses %j', (props) => {
    expect(checkPublishProperties(props)).toEqual(expect.any(String));
  });
});
