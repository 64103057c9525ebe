/** The PUBLISH fast paths agree with mqtt-packet (the reference codec) byte for byte (property tests). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import mqttPacket, { type IPublishPacket } from 'mqtt-packet';
import { encodeAck, encodePublishFast, parsePublishFast } from './codec.js';

const arbPublish = fc.record({
  topic: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }),
  payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  qos: fc.constantFrom(0 as const, 1 as const, 2 as const),
  retain: fc.boolean(),
  dup: fc.boolean(),
  messageId: fc.integer({ min: 1, max: 65535 }),
  v5: fc.boolean(),
});

describe('PUBLISH fast path', () => {
  it('encodePublishFast produces the same bytes as mqtt-packet', () => {
    fc.assert(
      fc.property(arbPublish, (p) => {
        const ref = mqttPacket.generate(
          {
            cmd: 'publish',
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            ...(p.qos > 0 ? { messageId: p.messageId } : {}),
          },
          { protocolVersion: p.v5 ? 5 : 4 },
        );
        const fast = encodePublishFast(p.topic, p.payload, p.qos, p.retain, p.dup, p.messageId, p.v5);
        expect(fast.equals(ref)).toBe(true);
      }),
    );
  });

  it('parsePublishFast reads what mqtt-packet writes', () => {
    fc.assert(
      fc.property(arbPublish, (p) => {
        const bytes = encodePublishFast(p.topic, p.payload, p.qos, p.retain, p.dup, p.messageId, p.v5);
        let h = 1;
        while (bytes[h]! & 0x80) h++;
        const parsed = parsePublishFast(bytes, 0, h + 1, bytes.length, p.v5) as IPublishPacket;
        expect(parsed.topic).toBe(p.topic);
        expect(Buffer.from(parsed.payload as Buffer).equals(p.payload)).toBe(true);
        expect([parsed.qos, parsed.retain, parsed.dup]).toEqual([p.qos, p.retain, p.dup]);
        expect(parsed.messageId).toBe(p.qos > 0 ? p.messageId : undefined);
      }),
    );
  });

  it('defers v5 PUBLISH with properties to mqtt-packet, and flags QoS 3 as malformed', () => {
    const withProps = mqttPacket.generate(
      {
        cmd: 'publish',
        topic: 'a',
        payload: Buffer.from('x'),
        qos: 0,
        dup: false,
        retain: false,
        properties: { contentType: 'c' },
      },
      { protocolVersion: 5 },
    );
    expect(parsePublishFast(withProps, 0, 2, withProps.length, true)).toBeNull();
    const bad = Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]);
    expect(parsePublishFast(bad, 0, 2, bad.length, false)).toBe('malformed');
  });

  it('encodeAck: 3.1.1 bytes equal mqtt-packet; v5 uses the short form [MQTT-3.4.2-1] and parses as Success', () => {
    for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const) {
      const ref = mqttPacket.generate({ cmd, messageId: 513 }, { protocolVersion: 4 });
      expect(encodeAck(cmd, 513).equals(ref)).toBe(true);
      const parser = mqttPacket.parser({ protocolVersion: 5 });
      const got: Array<{ cmd: string; messageId?: number; reasonCode?: number }> = [];
      parser.on('packet', (p) => got.push(p));
      parser.parse(encodeAck(cmd, 513));
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ cmd, messageId: 513 });
      expect(got[0]!.reasonCode ?? 0).toBe(0);
    }
  });
});

describe('FrameParser (shared between connections)', () => {
  it('parses a valid frame after a malformed one (no state leaks between connections)', async () => {
    const { FrameParser } = await import('./codec.js');
    const parser = new FrameParser(4);
    const bad = Buffer.from([
      0x10, 0x0e, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x0a, 0x00, 0x02, 0x61, 0x62,
    ]);
    expect(parser.parse(bad)).toBeInstanceOf(Error);
    const good = mqttPacket.generate({
      cmd: 'connect',
      protocolVersion: 4,
      clientId: 'x',
      clean: true,
      keepalive: 10,
    });
    expect(parser.parse(good)).toMatchObject({ cmd: 'connect', clientId: 'x' });
    expect(parser.parse(good)).toMatchObject({ cmd: 'connect', clientId: 'x' });
  });
});
