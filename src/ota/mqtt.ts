/**
 * MQTT-based file delivery, as AWS IoT serves it (AWS IoT Developer Guide, "Using AWS IoT MQTT-based file
 * delivery in devices"): the reserved-topic service for
 *   $aws/things/{thing}/streams/{streamId}/describe/{json|cbor}  DescribeStream -> .../description/{fmt}
 *   $aws/things/{thing}/streams/{streamId}/get/{json|cbor}       GetStream      -> .../data/{fmt}, one message per block
 * and `.../rejected/{fmt}` for refusals, with AWS's short keys:
 * - DescribeStream request `{c?}`; response `{c?, s: streamVersion, d: description, r: [{f: fileId, z: size}]}`.
 * - GetStream request `{c?, s?: expected version, f: fileId, l: blockSize 256..131072, o?: first block,
 *   n?: block count, b?: bitmap of blocks from o}`; each block `{c?, f, l: payload bytes, i: block id, p}`.
 *   `p` is base64 in JSON (what AWS sends and the FreeRTOS / embedded-C downloaders decode; the guide's text
 *   says hex), a byte string in CBOR. `b` is base64 (or `0x`-prefixed hex, the guide's example) in JSON, a
 *   byte string in CBOR; bit k (LSB first within each byte) asks for block o + k.
 * - One request returns at most 128 KB of blocks (AWS's limit, at least one block); the device asks again
 *   for the rest. `n` without a bitmap defaults to 131072 / l.
 * - Rejection `{o: code, m: message, c?}` with AWS's codes: InvalidTopic, InvalidJson, InvalidCbor,
 *   InvalidRequest, BlockSizeOutOfBounds, OffsetOutOfBounds, BlockCountLimitExceeded,
 *   BlockBitmapLimitExceeded, ResourceNotFound, VersionMismatch, InternalError.
 * Replies go ONLY to the requesting client (broker.deliverTo, as jobs replies do), never through routing,
 * subject to its iot:Receive on the reply topic; the request was an authorized iot:Publish on its topic.
 * A block is larger than l only never; a block that would not fit one MQTT message within
 * limits.maxPayloadBytes in the asked format is BlockSizeOutOfBounds (naming the largest that fits).
 */
import { open } from 'node:fs/promises';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { isThingsteadError } from '../errors/index.js';
import type { Broker, ReservedTopicService, ServiceRequest } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import type { OtaService } from './service.js';

const TOPIC = /^\$aws\/things\/([^/]+)\/streams\/([^/]+)\/(describe|get)\/([^/]+)$/;
const MIN_BLOCK = 256;
const MAX_BLOCK = 131_072;
/** Bytes of blocks one GetStream returns (AWS: 128 KB per request). */
const MAX_RESPONSE = 131_072;
const MAX_BLOCKS = 98_304;
const MAX_BITMAP = 12_288;
/** Room for the non-payload members of a data message ({c, f, l, i} and the `p` key). */
const OVERHEAD = 160;

type Format = 'json' | 'cbor';
type Request = Record<string, unknown>;

/** A refusal with AWS's code; the message says what to change. */
class Rejection extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function decodeRequest(payload: Buffer, format: Format): Request {
  if (payload.length === 0) return {};
  let v: unknown;
  try {
    v = format === 'json' ? JSON.parse(payload.toString('utf8')) : cborDecode(payload);
  } catch {
    throw format === 'json'
      ? new Rejection('InvalidJson', 'The request is not a valid JSON document')
      : new Rejection('InvalidCbor', 'The request is not a valid CBOR document');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array)
    throw new Rejection('InvalidRequest', 'The request must be a map');
  return v as Request;
}

function integer(
  r: Request,
  key: string,
  min: number,
  max: number,
  code = 'InvalidRequest',
): number | undefined {
  const v = r[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new Rejection('InvalidRequest', `"${key}" must be an integer`);
  if (v < min || v > max) throw new Rejection(code, `"${key}" must be between ${min} and ${max}, not ${v}`);
  return v;
}

function bitmapOf(r: Request, format: Format): Uint8Array | undefined {
  const b = r.b;
  if (b === undefined || b === null) return undefined;
  let bytes: Uint8Array;
  if (b instanceof Uint8Array) bytes = b;
  else if (typeof b === 'string' && format === 'json') {
    const hex = /^0x([0-9a-fA-F]*)$/.exec(b);
    bytes = hex ? Buffer.from(hex[1]!.length % 2 ? `0${hex[1]}` : hex[1]!, 'hex') : Buffer.from(b, 'base64');
  } else
    throw new Rejection(
      'InvalidRequest',
      '"b" must be a bitmap (base64 or 0x-hex text in JSON, bytes in CBOR)',
    );
  if (bytes.length >= MAX_BITMAP)
    throw new Rejection('BlockBitmapLimitExceeded', `The bitmap must be less than ${MAX_BITMAP} bytes`);
  return bytes;
}

/** The largest block that fits one data message in `format` within `maxPayload`. */
export function maxBlockFor(format: Format, maxPayload: number): number {
  const room = maxPayload - OVERHEAD;
  const fit = format === 'json' ? Math.floor(room / 4) * 3 : room;
  return Math.max(MIN_BLOCK, Math.min(MAX_BLOCK, fit));
}

/** Which blocks a GetStream asks for (at most `limit`), in block order. */
export function blocksWanted(
  req: { offset: number; count: number | undefined; bitmap: Uint8Array | undefined },
  totalBlocks: number,
  perResponse: number,
): number[] {
  const out: number[] = [];
  const cap = Math.min(perResponse, req.count && req.count > 0 ? req.count : perResponse);
  if (req.bitmap) {
    for (let byte = 0; byte < req.bitmap.length && out.length < cap; byte++) {
      const bits = req.bitmap[byte]!;
      if (bits === 0) continue;
      for (let bit = 0; bit < 8 && out.length < cap; bit++) {
        if (bits & (1 << bit)) {
          const id = req.offset + byte * 8 + bit;
          if (id < totalBlocks) out.push(id);
        }
      }
    }
    return out;
  }
  for (let id = req.offset; id < totalBlocks && out.length < cap; id++) out.push(id);
  return out;
}

export function streamsMqttService(options: {
  service: OtaService;
  broker: Pick<Broker, 'deliverTo'>;
  logger: Logger;
  /** limits.maxPayloadBytes: a data message never exceeds it. */
  maxPayloadBytes: number;
}): ReservedTopicService {
  const { service, broker, logger } = options;
  const encode = (format: Format, body: Record<string, unknown>) =>
    format === 'json' ? Buffer.from(JSON.stringify(body)) : Buffer.from(cborEncode(body));

  async function handle(req: ServiceRequest) {
    const m = TOPIC.exec(req.topic);
    if (!m) return;
    const [, thing, streamId, op, fmt] = m as unknown as [string, string, string, 'describe' | 'get', string];
    const base = `$aws/things/${thing}/streams/${streamId}`;
    const format: Format = fmt === 'cbor' ? 'cbor' : 'json';
    const qos = req.qos === 0 ? 0 : 1;
    const reply = (suffix: string, body: Record<string, unknown>) =>
      broker.deliverTo(req.publisher.clientId, {
        topic: `${base}/${suffix}/${format}`,
        payload: encode(format, body),
        qos,
        retain: false,
      });
    let clientToken: string | undefined;
    try {
      if (fmt !== 'json' && fmt !== 'cbor')
        throw new Rejection('InvalidTopic', `The topic must end in /json or /cbor, not /${fmt}`);
      const r = decodeRequest(req.payload, format);
      if (r.c !== undefined) {
        if (typeof r.c !== 'string' || Buffer.byteLength(r.c) > 64)
          throw new Rejection('InvalidRequest', 'The client token "c" must be a string of at most 64 bytes');
        clientToken = r.c;
      }
      const c = clientToken !== undefined ? { c: clientToken } : {};
      const stream = await service.getStream(streamId).catch((err: unknown) => {
        if (isThingsteadError(err) && err.code === 'ResourceNotFound')
          throw new Rejection('ResourceNotFound', `Stream ${streamId} does not exist`);
        throw err;
      });
      const sized = async (fileId: number) => {
        const entry = stream.files.find((f) => f.fileId === fileId);
        const ref = entry?.s3Location.key.split('/').filter(Boolean).pop();
        const file = ref !== undefined ? await service.findFile(ref) : null;
        if (!file) throw new Rejection('ResourceNotFound', `Stream ${streamId} has no file ${fileId}`);
        return file;
      };
      if (op === 'describe') {
        const r2 = [];
        for (const f of stream.files) {
          const file = await sized(f.fileId).catch(() => null);
          if (file) r2.push({ f: f.fileId, z: file.size });
        }
        reply('description', { ...c, s: stream.version, d: stream.description ?? '', r: r2 });
        return;
      }
      const version = integer(r, 's', 0, Number.MAX_SAFE_INTEGER);
      if (version !== undefined && version !== stream.version)
        throw new Rejection(
          'VersionMismatch',
          `The stream version is ${stream.version}, not the ${version} requested`,
        );
      const fileId = integer(r, 'f', 0, 255);
      if (fileId === undefined) throw new Rejection('InvalidRequest', 'The file id "f" is required');
      const blockSize = integer(r, 'l', MIN_BLOCK, MAX_BLOCK, 'BlockSizeOutOfBounds');
      if (blockSize === undefined) throw new Rejection('InvalidRequest', 'The block size "l" is required');
      const fits = maxBlockFor(format, options.maxPayloadBytes);
      if (blockSize > fits)
        throw new Rejection(
          'BlockSizeOutOfBounds',
          `A ${format} block of ${blockSize} bytes does not fit one message here: at most ${fits}`,
        );
      const offset = integer(r, 'o', 0, MAX_BLOCKS, 'OffsetOutOfBounds') ?? 0;
      const count = integer(r, 'n', 0, MAX_BLOCKS, 'BlockCountLimitExceeded');
      const bitmap = bitmapOf(r, format);
      const file = await sized(fileId);
      const totalBlocks = Math.ceil(file.size / blockSize);
      if (offset >= Math.max(1, totalBlocks))
        throw new Rejection(
          'OffsetOutOfBounds',
          `Block ${offset} is past the end of file ${fileId} (${totalBlocks} blocks of ${blockSize} bytes)`,
        );
      const perResponse = Math.max(1, Math.floor(MAX_RESPONSE / blockSize));
      const ids = blocksWanted({ offset, count, bitmap }, totalBlocks, perResponse);
      const handle = await open(service.fileOnDisk(file.sha256), 'r');
      try {
        for (const i of ids) {
          const start = i * blockSize;
          const length = Math.min(blockSize, file.size - start);
          const buf = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buf, 0, length, start);
          const p = buf.subarray(0, bytesRead);
          reply('data', { ...c, f: fileId, l: p.length, i, p: format === 'json' ? p.toString('base64') : p });
        }
      } finally {
        await handle.close();
      }
    } catch (err) {
      const rejection =
        err instanceof Rejection ? err : new Rejection('InternalError', 'The request could not be served');
      if (!(err instanceof Rejection)) logger.warn({ err, topic: req.topic }, 'stream request failed');
      reply('rejected', {
        o: rejection.code,
        m: rejection.message,
        ...(clientToken !== undefined ? { c: clientToken } : {}),
      });
    }
  }

  return {
    name: 'streams',
    filters: ['$aws/things/+/streams/+/describe/+', '$aws/things/+/streams/+/get/+'],
    handle,
    queue: { concurrency: 4 },
  };
}
