/**
 * Getting the image onto the device:
 * - HTTPS (or HTTP) with byte ranges: the bytes go to `<file>.part`; a retry (or a restarted agent) asks for
 *   `Range: bytes=<have>-` and appends, so nothing is fetched twice. TLS uses the device's certificate (the
 *   device HTTPS port is mutual TLS) and the platform CA. A 403 carries the platform's reason
 *   (`expired`, `forged`, `missing`), which ends the download at once: retrying cannot help.
 * - MQTT file delivery (AWS's GetStream): blocks of `blockSize` asked for with a bitmap of the missing
 *   ones from the first missing block, up to `window` requests outstanding; blocks are written at their
 *   offsets, and what did not arrive within `timeoutMs` is asked for again.
 */
import { closeSync, existsSync, ftruncateSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { MqttClient } from 'mqtt';

/** A download that failed for a reason the job should name. */
export class DownloadError extends Error {
  constructor(
    /** URL_EXPIRED, URL_FORGED, URL_UNSIGNED, NOT_FOUND, DOWNLOAD_FAILED, STREAM_REJECTED, TIMEOUT */
    readonly failure: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Tls {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

const partOf = (file: string) => `${file}.part`;

function get(url: URL, tls: Tls, from: number): Promise<IncomingMessage> {
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        headers: from > 0 ? { range: `bytes=${from}-` } : {},
        ...(url.protocol === 'https:' ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}),
        timeout: 30_000,
      },
      resolve,
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end();
  });
}

async function bodyText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Download `url` to `file` (resuming `<file>.part`), expecting `size` bytes. Calls `progress` with the
 * bytes held so far. Retries transport failures `retries` times.
 */
export async function downloadHttps(options: {
  url: string;
  file: string;
  size: number;
  tls: Tls;
  retries?: number;
  progress?: (bytes: number) => void;
}): Promise<void> {
  const part = partOf(options.file);
  const url = new URL(options.url);
  let lastError = '';
  for (let attempt = 0; attempt <= (options.retries ?? 3); attempt++) {
    const have = existsSync(part) ? statSync(part).size : 0;
    if (have >= options.size && have > 0) break;
    let res: IncomingMessage;
    try {
      res = await get(url, options.tls, have);
    } catch (err) {
      lastError = (err as Error).message;
      continue;
    }
    if (res.statusCode === 403) {
      const text = await bodyText(res);
      let body: { message?: string; reason?: string } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // not JSON
      }
      const failure =
        body.reason === 'expired' ? 'URL_EXPIRED' : body.reason === 'forged' ? 'URL_FORGED' : 'URL_UNSIGNED';
      throw new DownloadError(failure, `download refused (HTTP 403): ${body.message ?? text}`);
    }
    if (res.statusCode === 404) throw new DownloadError('NOT_FOUND', `download: ${await bodyText(res)}`);
    if (res.statusCode === 416) {
      // We hold more than the server has: start over.
      res.resume();
      closeSync(openSync(part, 'w'));
      continue;
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      lastError = `HTTP ${res.statusCode}: ${await bodyText(res)}`;
      continue;
    }
    // 200: the server sent the whole file (it ignored the range): write from the start.
    const fd = openSync(part, res.statusCode === 206 ? 'a' : 'w');
    let held = res.statusCode === 206 ? have : 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        writeSync(fd, chunk);
        held += chunk.length;
        options.progress?.(held);
      }
    } catch (err) {
      lastError = (err as Error).message;
    } finally {
      closeSync(fd);
    }
  }
  const got = existsSync(part) ? statSync(part).size : 0;
  if (got < options.size && lastError)
    throw new DownloadError('DOWNLOAD_FAILED', `download failed after retries: ${lastError}`);
  renameSync(part, options.file);
}

/** A GetStream client over one MQTT connection: the agent routes `.../streams/{id}/{data,rejected}/{fmt}` messages to it. */
export interface StreamDownload {
  /** Feed a message received on this stream's data or rejected topic. */
  onMessage(kind: 'data' | 'rejected', payload: Buffer): void;
  readonly done: Promise<void>;
}

export function downloadStream(options: {
  client: MqttClient;
  thingName: string;
  streamId: string;
  fileId: number;
  size: number;
  file: string;
  format: 'json' | 'cbor';
  blockSize: number;
  /** Requests outstanding at once (each asks for up to 128 KB of blocks). */
  window?: number;
  timeoutMs?: number;
  progress?: (bytes: number) => void;
}): StreamDownload {
  const { client, format, blockSize, size } = options;
  const total = Math.max(1, Math.ceil(size / blockSize));
  const perRequest = Math.max(1, Math.floor(131_072 / blockSize));
  const window = options.window ?? 4;
  const have = new Uint8Array(total);
  let received = 0;
  let bytes = 0;
  const part = partOf(options.file);
  const fd = openSync(part, 'w');
  ftruncateSync(fd, size);
  const topic = `$aws/things/${options.thingName}/streams/${options.streamId}/get/${format}`;
  /** Outstanding requests: the blocks each asked for. */
  const outstanding = new Map<string, { blocks: number[]; at: number }>();
  let next = 0;
  let seq = 0;
  let settle!: (err?: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  let finished = false;
  const finish = (err?: Error) => {
    if (finished) return;
    finished = true;
    clearInterval(timer);
    closeSync(fd);
    if (!err) renameSync(part, options.file);
    settle(err);
  };

  function ask(blocks: number[]) {
    const c = `${options.streamId}-${++seq}`;
    const offset = blocks[0]!;
    const bitmap = Buffer.alloc(Math.ceil((blocks[blocks.length - 1]! - offset + 1) / 8));
    for (const b of blocks) bitmap[(b - offset) >> 3]! |= 1 << ((b - offset) & 7);
    const body = {
      c,
      f: options.fileId,
      l: blockSize,
      o: offset,
      n: blocks.length,
      b: format === 'json' ? bitmap.toString('base64') : bitmap,
    };
    outstanding.set(c, { blocks, at: Date.now() });
    const payload = format === 'json' ? JSON.stringify(body) : Buffer.from(cborEncode(body));
    client.publish(topic, payload, { qos: 1 }, () => undefined);
  }
  function fill() {
    while (outstanding.size < window && next < total) {
      const blocks: number[] = [];
      while (blocks.length < perRequest && next < total) {
        if (!have[next]) blocks.push(next);
        next++;
      }
      if (blocks.length) ask(blocks);
    }
    if (received === total) finish();
  }
  const timer = setInterval(() => {
    const now = Date.now();
    for (const [c, o] of outstanding) {
      if (now - o.at < (options.timeoutMs ?? 5000)) continue;
      outstanding.delete(c);
      const missing = o.blocks.filter((b) => !have[b]);
      if (missing.length) ask(missing);
    }
  }, 250);
  timer.unref();

  fill();
  return {
    done,
    onMessage(kind, payload) {
      if (finished) return;
      let m: Record<string, any>;
      try {
        m =
          format === 'json'
            ? JSON.parse(payload.toString('utf8'))
            : (cborDecode(payload) as Record<string, any>);
      } catch {
        return;
      }
      if (kind === 'rejected') {
        if (typeof m.c === 'string' && !outstanding.has(m.c)) return;
        finish(new DownloadError('STREAM_REJECTED', `stream ${options.streamId}: ${m.o}: ${m.m}`));
        return;
      }
      const i = Number(m.i);
      if (m.f !== options.fileId || !Number.isInteger(i) || i < 0 || i >= total || have[i]) return;
      const data = format === 'json' ? Buffer.from(String(m.p), 'base64') : Buffer.from(m.p as Uint8Array);
      writeSync(fd, data, 0, data.length, i * blockSize);
      have[i] = 1;
      received++;
      bytes += data.length;
      options.progress?.(bytes);
      const o = typeof m.c === 'string' ? outstanding.get(m.c) : undefined;
      if (o && o.blocks.every((b) => have[b])) outstanding.delete(m.c);
      fill();
    },
  };
}
