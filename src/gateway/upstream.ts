/**
 * The uplink: one MQTT 5 connection to Thingstead (or AWS IoT) with the gateway's own certificate, which
 * drains the disk queue in sequence order with QoS 1.
 *
 * Contract:
 * - At most `maxInflight` records are published and not yet acknowledged; a record leaves the queue only on
 *   its PUBACK. Records in flight when the connection drops are sent again by the MQTT client on reconnect
 *   (counted `resent`): delivery is at least once, and the `seq` in every payload lets a consumer drop a copy.
 * - PUBACK 0x97 Quota exceeded (a publish quota, or the platform's store backlog: both pass) keeps the record
 *   on disk: it is sent again after a backoff (1 s doubling to `quotaRetryMaxMs`, default 30 s, reset by an
 *   accepted record), and nothing new is sent meanwhile, so a throttled gateway slows down instead of
 *   hammering. Each such refusal is counted in `retried` by reason code. Records accepted while the first
 *   refusals came back (the in-flight window) may arrive before the retried ones: the order on the wire is
 *   then not seq order; `seq` and `ts` are.
 * - Any other refusal (reason code >= 0x80: 0x87 not authorized, 0x95 payload too large, ...) is final: the
 *   record is settled as dropped, counted in `refused` by reason code and logged with the server's reason
 *   string, so one bad record never blocks the queue.
 * - A record the MQTT client gave up on without an answer (its connection closed before it was written) is
 *   sent again on the next connection; one in the client's in-flight store is resent by the client itself.
 * - Reconnects back off from 1 s to `maxBackoffMs` (default 10 s, with jitter), reset by a good connection:
 *   the platform back from an outage sees the gateway again within about 10 s.
 * - Payload on the wire: the record's JSON object with `seq` and `ts` (epoch ms of the reading) in front:
 *   `{"seq":42,"ts":1767000000000,"device":"plc-1","temperature":21.5}`.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { Backoff } from './driver.js';
import type { DiskQueue, QueuedRecord } from './queue.js';

export interface UpstreamOptions {
  /** `mqtts://host:8883` (mutual TLS) or `mqtt://` for a development broker. */
  readonly url: string;
  readonly clientId: string;
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  readonly queue: DiskQueue;
  readonly maxInflight?: number;
  readonly maxBackoffMs?: number;
  readonly keepaliveS?: number;
  /** Longest wait before a record refused with 0x97 Quota exceeded is sent again (default 30 s). */
  readonly quotaRetryMaxMs?: number;
  readonly log?: (event: string, fields?: Record<string, unknown>) => void;
}

export interface UpstreamStats {
  readonly connected: boolean;
  readonly connects: number;
  readonly published: number;
  readonly acked: number;
  readonly resent: number;
  /** Final refusals (the record was dropped), by PUBACK reason code (`0x87`, ...). */
  readonly refused: Readonly<Record<string, number>>;
  /** Transient refusals (the record stayed on disk and was sent again), by reason code (`0x97`). */
  readonly retried: Readonly<Record<string, number>>;
  /** Records waiting to be sent again (refused with 0x97, or given up by the client unsent). */
  readonly waiting: number;
  /** Epoch ms until which nothing is sent after a 0x97, or null when not throttled. */
  readonly throttledUntil: number | null;
  readonly inflight: number;
  readonly lastError: string | null;
  readonly connectedSince: number | null;
}

export interface Upstream {
  readonly client: MqttClient;
  /** Send what the queue holds, as far as the in-flight window allows (call after appending). */
  pump(): void;
  stats(): UpstreamStats;
  /** Resolves once connected (for tests and the first shadow report). */
  connected(): Promise<void>;
  close(): Promise<void>;
}

/** The wire payload of a queued record: its JSON object with seq and ts first. */
export function wirePayload(r: QueuedRecord): Buffer {
  const head = `{"seq":${r.seq},"ts":${r.ts}`;
  const body = r.payload;
  if (body.length <= 2) return Buffer.from(`${head}}`);
  return Buffer.concat([Buffer.from(`${head},`), body.subarray(1)]);
}

/** PUBACK reason codes the uplink acts on [MQTT-5.0 §3.4.2.1, table 2-6]. */
const REASON = { FAILURE_FROM: 0x80, QUOTA_EXCEEDED: 0x97 } as const;

export function startUpstream(options: UpstreamOptions): Upstream {
  const { queue } = options;
  const log = options.log ?? (() => undefined);
  const maxInflight = options.maxInflight ?? 100;
  const backoff = new Backoff({ initialMs: 1000, maxMs: options.maxBackoffMs ?? 10_000 });
  let inflight = 0;
  let published = 0;
  let acked = 0;
  let resent = 0;
  let connects = 0;
  let lastError: string | null = null;
  let connectedSince: number | null = null;
  let closing = false;
  const refused: Record<string, number> = {};
  const retried: Record<string, number> = {};
  /** Records to send before anything new: refused with 0x97, or given up by the client unsent (seq order). */
  const again: QueuedRecord[] = [];
  const quotaBackoff = new Backoff({ initialMs: 1000, maxMs: options.quotaRetryMaxMs ?? 30_000 });
  let throttledUntil = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  const waiters: Array<() => void> = [];

  const client = mqtt.connect(options.url, {
    clientId: options.clientId,
    protocolVersion: 5,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    clean: true,
    keepalive: options.keepaliveS ?? 30,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    // Nothing is queued by the client while offline: the disk queue is the store (see pump()).
    queueQoSZero: false,
    // No pre-built packet-id buffers: MQTT.js (mqtt-packet) otherwise keeps 65,536 two-byte Buffers, about 6 MB
    // of heap for the life of the process, to save one 2-byte allocation per packet (docs/gateway.md, memory).
    writeCache: false,
  });

  client.on('connect', () => {
    connects++;
    connectedSince = Date.now();
    lastError = null;
    backoff.reset();
    client.options.reconnectPeriod = 1000;
    // The client re-sends what was in flight when the last connection dropped, before anything new.
    if (connects > 1 && inflight > 0) resent += inflight;
    log('upstream connected', { url: options.url, clientId: options.clientId, inflight });
    for (const w of waiters.splice(0)) w();
    pump();
  });
  client.on('close', () => {
    if (connectedSince !== null)
      log('upstream connection lost', { inflight, pending: queue.stats().pending });
    connectedSince = null;
    if (!closing) client.options.reconnectPeriod = backoff.next();
  });
  client.on('error', (err) => {
    lastError = err.message;
    log('upstream error', { error: err.message });
  });

  /** Keep `r` for sending again, in seq order (the list is at most the in-flight window long). */
  function holdBack(r: QueuedRecord): void {
    let i = again.length;
    while (i > 0 && again[i - 1]!.seq > r.seq) i--;
    again.splice(i, 0, r);
  }

  function send(r: QueuedRecord): void {
    inflight++;
    published++;
    client.publish(r.topic, wirePayload(r), { qos: 1 }, (err, packet) => {
      inflight--;
      const code =
        (err as { code?: number } | undefined)?.code ??
        (packet as { reasonCode?: number; properties?: { reasonString?: string } } | undefined)?.reasonCode;
      if (err && (code === undefined || code < REASON.FAILURE_FROM)) {
        // The client gave up on the message unanswered: it is still in the queue. Closing: the next run
        // sends it; else it goes again on this or the next connection.
        if (!closing) {
          holdBack(r);
          pump();
        }
        return;
      }
      const reason = (packet as { properties?: { reasonString?: string } } | undefined)?.properties
        ?.reasonString;
      if (code === REASON.QUOTA_EXCEEDED) {
        // Transient: stays on disk, sent again after a backoff; nothing new goes out meanwhile.
        retried['0x97'] = (retried['0x97'] ?? 0) + 1;
        holdBack(r);
        if (Date.now() >= throttledUntil) {
          const delay = quotaBackoff.next();
          throttledUntil = Date.now() + delay;
          log('upstream throttled: quota exceeded, retrying', { seq: r.seq, delayMs: delay, reason });
          if (retryTimer) clearTimeout(retryTimer);
          retryTimer = setTimeout(() => {
            retryTimer = null;
            pump();
          }, delay);
          retryTimer.unref();
        }
        return;
      }
      if (code !== undefined && code >= REASON.FAILURE_FROM) {
        const key = `0x${code.toString(16)}`;
        refused[key] = (refused[key] ?? 0) + 1;
        log('upstream refused a record', { seq: r.seq, topic: r.topic, reasonCode: key, reason });
      } else {
        acked++;
        quotaBackoff.reset();
      }
      queue.ack(r.seq);
      pump();
    });
  }

  // A missed wake-up must never stall the queue: records held back (`again`) whose give-up callback came
  // while the client was between connections were seen stuck with nothing in flight (CI, load 2). Once a
  // second, an idle uplink looks again.
  const idleCheck = setInterval(() => {
    if (inflight === 0) pump();
  }, 1000);
  idleCheck.unref();

  function pump(): void {
    if (closing || !client.connected || Date.now() < throttledUntil) return;
    while (inflight < maxInflight && again.length > 0) send(again.shift()!);
    while (inflight < maxInflight) {
      const batch = queue.next(maxInflight - inflight);
      if (batch.length === 0) return;
      for (const r of batch) send(r);
    }
  }

  return {
    client,
    pump,
    stats: () => ({
      connected: client.connected,
      connects,
      published,
      acked,
      resent,
      refused: { ...refused },
      retried: { ...retried },
      waiting: again.length,
      throttledUntil: throttledUntil > Date.now() ? throttledUntil : null,
      inflight,
      lastError,
      connectedSince,
    }),
    connected: () =>
      client.connected ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
    async close() {
      closing = true;
      clearInterval(idleCheck);
      if (retryTimer) clearTimeout(retryTimer);
      await client.endAsync(false).catch(() => undefined);
    },
  };
}
