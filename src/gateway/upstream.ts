/**
 * The uplink: one MQTT 5 connection to Thingstead (or AWS IoT) with the gateway's own certificate, which
 * drains the disk queue in sequence order with QoS 1.
 *
 * Contract:
 * - At most `maxInflight` records are published and not yet acknowledged; a record leaves the queue only on
 *   its PUBACK. Records in flight when the connection drops are sent again by the MQTT client on reconnect
 *   (counted `resent`): delivery is at least once, and the `seq` in every payload lets a consumer drop a copy.
 * - A PUBACK refusing the message (reason code >= 0x80: not authorized, payload too large, ...) settles the
 *   record as dropped, counted by reason code and logged, so one bad record never blocks the queue.
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
  readonly log?: (event: string, fields?: Record<string, unknown>) => void;
}

export interface UpstreamStats {
  readonly connected: boolean;
  readonly connects: number;
  readonly published: number;
  readonly acked: number;
  readonly resent: number;
  readonly refused: Readonly<Record<string, number>>;
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

  function send(r: QueuedRecord): void {
    inflight++;
    published++;
    client.publish(r.topic, wirePayload(r), { qos: 1 }, (err, packet) => {
      inflight--;
      const code =
        (err as { code?: number } | undefined)?.code ??
        (packet as { reasonCode?: number } | undefined)?.reasonCode;
      if (err && (code === undefined || code < 0x80)) {
        // The client gave up on the message (closing): it stays in the queue for the next run.
        return;
      }
      if (code !== undefined && code >= 0x80) {
        const key = `0x${code.toString(16)}`;
        refused[key] = (refused[key] ?? 0) + 1;
        log('upstream refused a record', { seq: r.seq, topic: r.topic, reasonCode: key });
      } else acked++;
      queue.ack(r.seq);
      pump();
    });
  }

  function pump(): void {
    if (closing || !client.connected) return;
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
      inflight,
      lastError,
      connectedSince,
    }),
    connected: () =>
      client.connected ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
    async close() {
      closing = true;
      await client.endAsync(false).catch(() => undefined);
    },
  };
}
