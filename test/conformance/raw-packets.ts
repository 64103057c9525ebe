/**
 * Hand-built MQTT 5 frames for tests that need bytes MQTT.js and mqtt-packet will not produce: property
 * blocks given as raw bytes (truncated, mis-sized, duplicated, of the wrong type), empty SUBSCRIBE /
 * UNSUBSCRIBE payloads, acknowledgements without a packet identifier.
 */

/** A Variable Byte Integer [MQTT-1.5.5]. */
export function vbi(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 128;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A 2-byte length followed by the bytes (UTF-8 string or binary data) [MQTT-1.5.4, MQTT-1.5.6]. */
export function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

export const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** A whole frame: first byte, remaining length, body. */
export function frame(first: number, ...body: Buffer[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([Buffer.from([first]), vbi(b.length), b]);
}

/** A property block whose length is the length of `content` (override with `length` to lie). */
export function props(content: Buffer | number[] = [], length?: number): Buffer {
  const c = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return Buffer.concat([vbi(length ?? c.length), c]);
}

/** Well-formed property encodings, by identifier [MQTT-2.2.2.2]. */
export const P = {
  payloadFormat: (v: number) => Buffer.from([0x01, v]),
  messageExpiry: (s: number) => Buffer.concat([Buffer.from([0x02]), u32(s)]),
  contentType: (s: string | Buffer) => Buffer.concat([Buffer.from([0x03]), str(s)]),
  responseTopic: (s: string | Buffer) => Buffer.concat([Buffer.from([0x08]), str(s)]),
  correlationData: (b: Buffer) => Buffer.concat([Buffer.from([0x09]), str(b)]),
  subscriptionId: (n: number) => Buffer.concat([Buffer.from([0x0b]), vbi(n)]),
  sessionExpiry: (s: number) => Buffer.concat([Buffer.from([0x11]), u32(s)]),
  willDelay: (s: number) => Buffer.concat([Buffer.from([0x18]), u32(s)]),
  reasonString: (s: string) => Buffer.concat([Buffer.from([0x1f]), str(s)]),
  topicAlias: (n: number) => Buffer.concat([Buffer.from([0x23]), u16(n)]),
  maximumQos: (n: number) => Buffer.from([0x24, n]),
  userProperty: (k: string | Buffer, v: string | Buffer) =>
    Buffer.concat([Buffer.from([0x26]), str(k), str(v)]),
};

export interface ConnectOptions {
  clientId: string;
  clean?: boolean;
  keepAlive?: number;
  /** Raw CONNECT property block (default: empty). */
  properties?: Buffer;
  will?: { topic: string; payload: Buffer; qos?: 0 | 1 | 2; retain?: boolean; properties?: Buffer };
}

/** A v5 CONNECT [MQTT-3.1]; property blocks come as raw bytes (see `props`). */
export function connect5(o: ConnectOptions): Buffer {
  let flags = o.clean === false ? 0 : 0x02;
  const payload = [str(o.clientId)];
  if (o.will) {
    flags |= 0x04 | ((o.will.qos ?? 0) << 3) | (o.will.retain ? 0x20 : 0);
    payload.push(o.will.properties ?? props(), str(o.will.topic), str(o.will.payload));
  }
  return frame(
    0x10,
    str('MQTT'),
    Buffer.from([5, flags]),
    u16(o.keepAlive ?? 30),
    o.properties ?? props(),
    ...payload,
  );
}

/** A v5 PUBLISH [MQTT-3.3] with a raw property block. */
export function publish5(o: {
  topic: string;
  payload: Buffer | string;
  qos?: 0 | 1 | 2;
  retain?: boolean;
  packetId?: number;
  properties: Buffer;
}): Buffer {
  const qos = o.qos ?? 0;
  return frame(
    0x30 | (qos << 1) | (o.retain ? 1 : 0),
    str(o.topic),
    qos > 0 ? u16(o.packetId ?? 1) : Buffer.alloc(0),
    o.properties,
    Buffer.from(o.payload),
  );
}
