/**
 * Generators for MQTT 5 property-block fuzzing (shared by test/conformance/fuzz.test.ts and bench/fuzz.ts).
 * A fuzz session is one raw TCP connection: a v5 CONNECT (often with a will whose properties are fuzzed),
 * then PUBLISH (QoS 0/1, retained or not), SUBSCRIBE, UNSUBSCRIBE, PUBACK/PUBREC/PUBREL/PUBCOMP,
 * DISCONNECT and AUTH packets whose property blocks are random: every identifier (including
 * server-only and unknown ones), values of the right or the wrong type, truncated blocks, lying lengths,
 * duplicates. Topics are under `pfuzz/`, so well-behaved subscribers of `pfuzz/#` receive whatever the
 * broker lets through. Client ids come from a small pool, so sessions are taken over, kept (persistent,
 * with subscriptions and queued QoS 1 messages) and stored.
 */
import fc from 'fast-check';
import { connect as netConnect } from 'node:net';
import { connect5, frame, props, publish5, str, u16, u32, vbi } from './raw-packets.js';

const enum Ty {
  Byte,
  U16,
  U32,
  Vbi,
  Utf8,
  Binary,
  Pair,
}

/** Every MQTT 5 property identifier with its type [MQTT-2.2.2.2], plus identifiers that do not exist. */
const IDS: Array<[number, Ty]> = [
  [0x01, Ty.Byte],
  [0x02, Ty.U32],
  [0x03, Ty.Utf8],
  [0x08, Ty.Utf8],
  [0x09, Ty.Binary],
  [0x0b, Ty.Vbi],
  [0x11, Ty.U32],
  [0x12, Ty.Utf8],
  [0x13, Ty.U16],
  [0x15, Ty.Utf8],
  [0x16, Ty.Binary],
  [0x17, Ty.Byte],
  [0x18, Ty.U32],
  [0x19, Ty.Byte],
  [0x1a, Ty.Utf8],
  [0x1c, Ty.Utf8],
  [0x1f, Ty.Utf8],
  [0x21, Ty.U16],
  [0x22, Ty.U16],
  [0x23, Ty.U16],
  [0x24, Ty.Byte],
  [0x25, Ty.Byte],
  [0x26, Ty.Pair],
  [0x27, Ty.U32],
  [0x28, Ty.Byte],
  [0x29, Ty.Byte],
  [0x2a, Ty.Byte],
  [0x00, Ty.Byte],
  [0x7f, Ty.U16],
  [0x80, Ty.Byte],
];

const stringBytes: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }).map((s) => Buffer.from(s)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('pfuzz/reply', 'a/#', '+', '', 'text/plain').map((s) => Buffer.from(s)),
  },
  // ill-formed UTF-8, U+0000, a lone surrogate's encoding
  {
    weight: 1,
    arbitrary: fc.constantFrom([0xff], [0x61, 0x00], [0xc3], [0xed, 0xa0, 0x80]).map((b) => Buffer.from(b)),
  },
);

const value = (t: Ty): fc.Arbitrary<Buffer> => {
  switch (t) {
    case Ty.Byte:
      return fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 255 })).map((b) => Buffer.from([b]));
    case Ty.U16:
      return fc.oneof(fc.constantFrom(0, 1, 65535), fc.integer({ min: 0, max: 65535 })).map(u16);
    case Ty.U32:
      return fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 600 })).map(u32);
    case Ty.Vbi:
      return fc.oneof(
        fc.integer({ min: 0, max: 268_435_455 }).map(vbi),
        fc.constantFrom([0x80, 0x00], [0xff, 0xff, 0xff, 0xff, 0x7f], [0x80]).map((b) => Buffer.from(b)),
      );
    case Ty.Utf8:
      return stringBytes.map(str);
    case Ty.Binary:
      return fc.uint8Array({ maxLength: 16 }).map((u) => str(Buffer.from(u)));
    case Ty.Pair:
      return fc.tuple(stringBytes, stringBytes).map(([k, v]) => Buffer.concat([str(k), str(v)]));
  }
};

/** One property: identifier and a value of its own type (usually) or of another type. */
const property: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.constantFrom(...IDS),
    fc.integer({ min: 0, max: 9 }),
    fc.constantFrom(Ty.Byte, Ty.U16, Ty.U32, Ty.Utf8, Ty.Pair),
  )
  .chain(([[id, t], roll, other]) =>
    value(roll < 8 ? t : other).map((v) => Buffer.concat([Buffer.from([id]), v])),
  );

/** A whole property block (with its length): valid-looking, truncated, lying about its length, duplicated. */
export const propertyBlock: fc.Arbitrary<Buffer> = fc
  .tuple(fc.array(property, { maxLength: 5 }), fc.nat({ max: 1000 }), fc.integer({ min: 0, max: 5 }))
  .map(([items, n, how]) => {
    const content = Buffer.concat(items);
    switch (how) {
      case 0: // block cut short, the length still claims all of it
        return props(content.subarray(0, n % (content.length + 1)), content.length);
      case 1: // the length lies (longer or shorter)
        return props(content, Math.max(0, content.length + (n % 9) - 4));
      case 2: // every property twice
        return props(Buffer.concat([content, content]));
      default:
        return props(content);
    }
  });

/** A small well-formed block: some fuzz packets keep their properties sane so later packets are reached. */
const maybeBlock = fc.oneof(
  { weight: 3, arbitrary: propertyBlock },
  { weight: 1, arbitrary: fc.constant(props()) },
);

const CLIENT_POOL = 24;
const clientId = fc.integer({ min: 0, max: CLIENT_POOL - 1 }).map((i) => `pfuzz-${i}`);
const topic = fc.constantFrom('pfuzz/a', 'pfuzz/r/1', 'pfuzz/r/2', 'pfuzz/q/x', 'pfuzz/will');

const connectPacket: fc.Arbitrary<Buffer> = fc
  .record({
    clientId,
    clean: fc.boolean(),
    persistent: fc.boolean(),
    withWill: fc.boolean(),
    willProps: maybeBlock,
    connectProps: fc.oneof(
      { weight: 4, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: propertyBlock },
    ),
    willQos: fc.constantFrom<0 | 1 | 2>(0, 1),
    willRetain: fc.boolean(),
  })
  .map((c) =>
    connect5({
      clientId: c.clientId,
      clean: c.clean,
      properties: c.connectProps ?? (c.persistent ? props(Buffer.from([0x11, 0, 0, 0x0e, 0x10])) : props()),
      will: c.withWill
        ? {
            topic: 'pfuzz/will',
            payload: Buffer.from('will'),
            qos: c.willQos,
            retain: c.willRetain,
            properties: c.willProps,
          }
        : undefined,
    }),
  );

const afterConnect: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record({
        topic,
        qos: fc.constantFrom<0 | 1>(0, 1, 1),
        retain: fc.boolean(),
        block: maybeBlock,
        id: fc.integer({ min: 1, max: 65535 }),
      })
      .map((p) =>
        publish5({
          topic: p.topic,
          payload: 'fuzz',
          qos: p.qos,
          retain: p.retain,
          packetId: p.id,
          properties: p.block,
        }),
      ),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ block: maybeBlock, qos: fc.integer({ min: 0, max: 2 }) })
      .map((s) => frame(0x82, u16(3), s.block, str('pfuzz/#'), Buffer.from([s.qos]))),
  },
  { weight: 1, arbitrary: maybeBlock.map((b) => frame(0xa2, u16(4), b, str('pfuzz/#'))) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(0x40, 0x50, 0x62, 0x70), fc.integer({ min: 0, max: 255 }), maybeBlock)
      .map(([first, rc, b]) => frame(first, u16(1), Buffer.from([rc]), b)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(0x00, 0x04), maybeBlock)
      .map(([rc, b]) => frame(0xe0, Buffer.from([rc]), b)),
  },
  { weight: 1, arbitrary: maybeBlock.map((b) => frame(0xf0, Buffer.from([0x18]), b)) },
);

export interface FuzzSession {
  readonly bytes: Buffer;
  readonly chunk: number;
  /** Packets in `bytes` (the CONNECT included). */
  readonly packets: number;
}

/** A v5 connection: CONNECT, then up to 8 packets with fuzzed property blocks, written in random chunks. */
export const propertySession: fc.Arbitrary<FuzzSession> = fc
  .record({
    connect: connectPacket,
    rest: fc.array(afterConnect, { maxLength: 8 }),
    chunk: fc.integer({ min: 1, max: 256 }),
  })
  .map(({ connect, rest, chunk }) => ({
    bytes: Buffer.concat([connect, ...rest]),
    chunk,
    packets: 1 + rest.length,
  }));

/** Write one session on a fresh connection; resolve when the broker closes it or after `lingerMs`. */
export function playSession(
  s: Pick<FuzzSession, 'bytes' | 'chunk'>,
  port: number,
  lingerMs = 150,
): Promise<void> {
  return new Promise((resolve) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy(); // an ungraceful drop: wills fire
      resolve();
    };
    const timer = setTimeout(finish, lingerMs);
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('data', () => undefined);
    socket.once('connect', () => {
      for (let i = 0; i < s.bytes.length && !socket.destroyed; i += s.chunk) {
        socket.write(s.bytes.subarray(i, i + s.chunk));
      }
    });
  });
}
