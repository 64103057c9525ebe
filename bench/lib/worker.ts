/**
 * Load-generator worker thread: a publisher group or a subscriber group of MQTT 3.1.1 connections.
 *
 * Counters live in a SharedArrayBuffer (one Int32 slot per worker, single writer) so the orchestrator
 * and the publishers read delivery progress without messages. Publishers send pre-encoded frames
 * (zero-copy slices of a ring) and pace themselves by:
 * - a global gate: at most `gate` messages sent but not yet delivered (per subscriber), so no broker
 *   queue grows without bound and QoS 0 figures are sustained rates, not buffer fills;
 * - QoS 1: at most `window` unacknowledged PUBLISHes per connection;
 * - TCP backpressure: a connection whose write() returned false waits for 'drain'.
 */
import { connect, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import {
  CONNACK,
  FrameScanner,
  PUBACK,
  PUBLISH,
  SUBACK,
  connectPacket,
  nowMicros,
  publishRing,
  subscribePacket,
  type PublishRing,
} from './frames.js';
import {
  PHASE,
  PHASE_RECORD,
  type FromWorker,
  type PubSpec,
  type SubSpec,
  type ToWorker,
  type WorkerSpec,
  type Common,
} from './protocol.js';

interface Conn {
  socket: Socket;
  scanner: FrameScanner;
  sent: number;
  acked: number;
  pos: number;
  blocked: boolean;
  ring: PublishRing;
}

/** Atomics.waitAsync (ES2024; in Node since 16), typed here because the project's lib is ES2023. */
type WaitAsyncResult = { async: false; value: string } | { async: true; value: Promise<string> };
const atomics = Atomics as unknown as {
  waitAsync(a: Int32Array, i: number, v: number, timeoutMs: number): WaitAsyncResult;
};
const waitAsync = (a: Int32Array, i: number, v: number, timeoutMs: number) =>
  atomics.waitAsync(a, i, v, timeoutMs);

const spec = workerData as WorkerSpec;
const counters = new Int32Array(spec.role === 'pair' ? spec.pub.shared : spec.shared);
const port = parentPort!;
let stopped = false;

function fail(message: string): void {
  if (stopped) return;
  port.postMessage({ type: 'error', message } satisfies FromWorker);
}

/** Open one connection, send CONNECT (and SUBSCRIBE), resolve once acknowledged. */
function open(
  spec: Common,
  index: number,
  onFrame: (conn: Conn, buf: Buffer, start: number, body: number) => void,
  ring: PublishRing,
  filter?: string,
): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: spec.port, host: '127.0.0.1', noDelay: true });
    let ready = false;
    const conn: Conn = {
      socket,
      sent: 0,
      acked: 0,
      pos: 0,
      blocked: false,
      ring,
      scanner: new FrameScanner((buf, start, body) => {
        if (ready) return onFrame(conn, buf, start, body);
        const type = buf[start]! >> 4;
        if (type === CONNACK) {
          if (buf[body + 1] !== 0) reject(new Error(`CONNACK return code ${buf[body + 1]}`));
          else if (filter === undefined) {
            ready = true;
            resolve(conn);
          } else socket.write(subscribePacket(filter, spec.qos));
        } else if (type === SUBACK) {
          if (buf[body + 2]! >= 0x80) reject(new Error('SUBSCRIBE refused'));
          ready = true;
          resolve(conn);
        }
      }),
    };
    socket.on('data', (chunk: Buffer) => conn.scanner.push(chunk));
    socket.on('error', (err) => (ready ? fail(`socket error: ${err.message}`) : reject(err)));
    socket.on('close', () => {
      if (!ready) reject(new Error('closed before CONNACK'));
      else fail(`connection ${spec.clientPrefix}-${index} closed by the broker`);
    });
    socket.write(connectPacket(`${spec.clientPrefix}-${index}`));
  });
}

function sum(slots: readonly number[]): number {
  let s = 0;
  for (const i of slots) s += Atomics.load(counters, i);
  return s;
}

async function runPublisher(p: PubSpec): Promise<void> {
  const ringSize = p.qos === 1 ? 4096 : 1024;
  const payload = Buffer.alloc(p.payloadBytes, 0x61);
  const rings = new Map<string, PublishRing>();
  const ringFor = (topic: string) => {
    let r = rings.get(topic);
    if (!r) rings.set(topic, (r = publishRing(topic, payload, p.qos, ringSize)));
    return r;
  };
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  const conns: Conn[] = [];
  const onFrame = (conn: Conn, buf: Buffer, start: number) => {
    if (buf[start]! >> 4 === PUBACK) conn.acked++;
  };
  for (let i = 0; i < p.conns; i++) {
    const topic = p.topics[i % p.topics.length]!;
    conns.push(await open(p, i, onFrame, ringFor(topic)));
  }
  for (const c of conns) {
    c.socket.on('drain', () => {
      c.blocked = false;
      kick();
    });
    // Acks may open the QoS 1 window: run the pump soon rather than on the next timer tick.
    if (p.qos === 1) c.socket.on('data', () => kick());
  }

  let slack = 0;
  let lastDelivered = -1;
  let gatedSince = 0;
  let stalls = 0;
  const schedule = (delayMs: number) => {
    if (stopped || timer || immediate) return;
    if (delayMs === 0) immediate = setImmediate(pump);
    else timer = setTimeout(pump, delayMs);
  };
  function kick() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    schedule(0);
  }

  /**
   * Messages the gate still allows. A broker that drops QoS 0 messages must not stall us forever: after
   * 1 s gated without a single delivery, the outstanding messages are written off (a counted stall).
   */
  function allowance(): number {
    const delivered = sum(p.subSlots) / p.fanout;
    const outstanding = sum(p.pubSlots) - delivered - slack;
    const room = p.gate - outstanding;
    if (room > 0) {
      gatedSince = 0;
      return Math.floor(room);
    }
    const now = Date.now();
    if (delivered !== lastDelivered) {
      lastDelivered = delivered;
      gatedSince = now;
    } else if (gatedSince && now - gatedSince > 1000) {
      stalls++;
      slack += outstanding;
      gatedSince = 0;
    } else if (!gatedSince) gatedSince = now;
    return 0;
  }

  function sendFrom(c: Conn, n: number, stamp: boolean): void {
    const { ring } = c;
    let ok = true;
    while (n > 0) {
      const k = Math.min(n, ring.count - c.pos);
      let chunk = ring.buf.subarray(c.pos * ring.frameBytes, (c.pos + k) * ring.frameBytes);
      if (stamp) {
        // Rate mode: a fresh buffer per batch, each payload stamped with the send time.
        chunk = Buffer.from(chunk);
        const t = nowMicros();
        for (let i = 0; i < k; i++) chunk.writeDoubleLE(t, i * ring.frameBytes + ring.payloadOffset);
      }
      ok = c.socket.write(chunk);
      c.pos = (c.pos + k) % ring.count;
      c.sent += k;
      n -= k;
    }
    if (!ok) c.blocked = true;
  }

  // Max-rate pump: fill every connection up to the gate / window, then yield to I/O.
  function pump() {
    timer = null;
    immediate = null;
    if (stopped) return;
    let room = allowance();
    let sentNow = 0;
    if (room > 0) {
      const per = Math.max(1, Math.min(ringSize, Math.ceil(room / conns.length)));
      for (const c of conns) {
        if (c.blocked) continue;
        let n = Math.min(per, room);
        if (p.qos === 1) n = Math.min(n, p.window - (c.sent - c.acked));
        if (n <= 0) continue;
        c.socket.cork();
        sendFrom(c, n, false);
        c.socket.uncork();
        sentNow += n;
        room -= n;
        if (room <= 0) break;
      }
    }
    if (sentNow > 0) {
      Atomics.add(counters, p.slot, sentNow);
      schedule(0);
    } else if (room <= 0) waitForDeliveries();
    else schedule(5); // window full or sockets blocked: acks and 'drain' kick the pump sooner
  }

  /**
   * Gate closed: sleep until the subscriber's counter moves (it notifies after every chunk) or 20 ms
   * pass. A timer poll here would cost ~1 ms per gate cycle and cap the rate the gate allows.
   */
  let waiting = false;
  function waitForDeliveries() {
    if (waiting || stopped) return;
    waiting = true;
    const slot = p.subSlots[0]!;
    const done = () => {
      waiting = false;
      if (!stopped && !timer && !immediate) pump();
    };
    const r = waitAsync(counters, slot, Atomics.load(counters, slot), 20);
    if (r.async) void r.value.then(done);
    else setImmediate(done);
  }

  // Rate pump: every ~1 ms send what is due, round robin over the connections. Messages that could not
  // be written (backpressure, or more than 10 ms overdue after a stall) are skipped, not queued: the
  // orchestrator reports the achieved rate next to the offered one.
  let started = 0;
  let offered = 0;
  let rr = 0;
  function ratePump() {
    timer = null;
    if (stopped) return;
    const due = Math.floor(((performance.now() - started) / 1000) * p.rate) - offered;
    offered += Math.max(0, due);
    let n = Math.min(due, Math.ceil(p.rate / 100));
    let sentNow = 0;
    const share = Math.ceil(n / conns.length);
    for (let tries = 0; n > 0 && tries < conns.length; tries++) {
      const c = conns[rr++ % conns.length]!;
      if (c.blocked) continue;
      const k = Math.min(n, share, c.ring.count);
      sendFrom(c, k, p.timestamps);
      n -= k;
      sentNow += k;
    }
    if (sentNow) Atomics.add(counters, p.slot, sentNow);
    timer = setTimeout(ratePump, 1);
  }

  port.on('message', (m: ToWorker) => {
    if (m.type === 'go') {
      if (p.rate > 0) {
        started = performance.now();
        ratePump();
      } else pump();
    } else if (m.type === 'stop') {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
      port.postMessage({
        type: 'result',
        role: 'pub',
        count: Atomics.load(counters, p.slot),
        stalls,
      } satisfies FromWorker);
      for (const c of conns) c.socket.destroy();
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}

async function runSubscriber(s: SubSpec, announce = true): Promise<void> {
  let samples = new Float64Array(s.latency ? 1 << 20 : 0);
  let nSamples = 0;
  let now = 0;
  let recording = false;
  let received = 0;
  let acks: number[] = [];
  const onFrame = (_conn: Conn, buf: Buffer, start: number, body: number) => {
    const b0 = buf[start]!;
    if (b0 >> 4 !== PUBLISH) return;
    received++;
    const qos = (b0 >> 1) & 3;
    const afterTopic = body + 2 + buf.readUInt16BE(body);
    if (qos > 0) acks.push(buf.readUInt16BE(afterTopic));
    if (recording) {
      if (nSamples === samples.length) {
        const bigger = new Float64Array(samples.length * 2);
        bigger.set(samples);
        samples = bigger;
      }
      samples[nSamples++] = now - buf.readDoubleLE(afterTopic + (qos > 0 ? 2 : 0));
    }
  };
  const dummy = publishRing('x', Buffer.alloc(0), 0, 1);
  const conns: Conn[] = [];
  for (let i = 0; i < s.conns; i++) conns.push(await open(s, i, onFrame, dummy, s.filter));
  for (const c of conns) {
    // Runs after the scanner's listener: count the chunk, acknowledge its QoS 1 messages in one write.
    c.socket.prependListener('data', () => {
      if (s.latency) {
        now = nowMicros();
        recording = Atomics.load(counters, PHASE) === PHASE_RECORD;
      }
    });
    c.socket.on('data', () => {
      if (received) {
        Atomics.add(counters, s.slot, received);
        Atomics.notify(counters, s.slot);
        received = 0;
      }
      if (acks.length) {
        const out = Buffer.allocUnsafe(acks.length * 4);
        for (let i = 0; i < acks.length; i++) {
          out[i * 4] = 0x40;
          out[i * 4 + 1] = 2;
          out.writeUInt16BE(acks[i]!, i * 4 + 2);
        }
        acks = [];
        c.socket.write(out);
      }
    });
  }
  port.on('message', (m: ToWorker) => {
    if (m.type !== 'stop') return;
    stopped = true;
    let latency: Extract<FromWorker, { type: 'result' }>['latency'];
    if (s.latency && nSamples > 0) {
      const sorted = samples.subarray(0, nSamples).sort();
      const q = (f: number) => sorted[Math.min(nSamples - 1, Math.floor(f * nSamples))]! / 1000;
      latency = { samples: nSamples, p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: q(1) };
    }
    port.postMessage({
      type: 'result',
      role: 'sub',
      count: Atomics.load(counters, s.slot),
      stalls: 0,
      latency,
    } satisfies FromWorker);
    for (const c of conns) c.socket.destroy();
  });
  if (announce) port.postMessage({ type: 'ready' } satisfies FromWorker);
}

(spec.role === 'pub'
  ? runPublisher(spec)
  : spec.role === 'sub'
    ? runSubscriber(spec)
    : runSubscriber(spec.sub, false).then(() => runPublisher(spec.pub))
).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
