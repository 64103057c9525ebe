/**
 * Broker metrics (prefix thingstead_mqtt_). Hot-path counters are pre-bound label children, so counting a
 * packet is one property increment inside prom-client, no label lookup.
 */
import { Counter, Gauge, Histogram, type Registry } from '../observability/index.js';

export type DropReason =
  | 'queue_full'
  | 'not_authorized_publish'
  | 'not_authorized_receive'
  | 'packet_too_large'
  | 'payload_too_large'
  | 'invalid_topic'
  | 'invalid_payload_format'
  | 'expired'
  | 'slow_consumer'
  | 'session_ended'
  | 'store_unavailable'
  | 'subscription_revoked'
  /** A delivery the codec could not encode for one receiver (others and the publisher are unaffected). */
  | 'encode_failed'
  | 'retained_quota'
  /** A PUBLISH over its thing's or billing group's publish quota (src/metering quotas). */
  | 'quota_publish';

export const PACKET_TYPES = [
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'auth',
] as const;

type Inc = { inc(v?: number): void };

/**
 * A counter for the hot path: a plain number added to the prom-client counter at scrape time.
 * (prom-client's own inc() hashes labels on every call, which cost ~8% of CPU under load.)
 */
class HotCounter implements Inc {
  n = 0;
  private reported = 0;
  constructor(private readonly target: { inc(v: number): void }) {}
  inc(v = 1): void {
    this.n += v;
  }
  flush(): void {
    const delta = this.n - this.reported;
    if (delta > 0) this.target.inc(delta);
    this.reported = this.n;
  }
}

/** A prom-client Counter whose labelled children are HotCounters flushed when it is collected. */
function hotCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]) {
  const hot: HotCounter[] = [];
  const counter: Counter<L> = new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const h of hot) h.flush();
    },
  });
  return (...values: string[]): HotCounter => {
    const labels = Object.fromEntries(labelNames.map((l, i) => [l, values[i]])) as Partial<Record<L, string>>;
    const h = new HotCounter({ inc: (v) => counter.inc(labels, v) });
    hot.push(h);
    return h;
  };
}

export interface BrokerMetrics {
  readonly connections: Gauge;
  readonly packetsIn: Record<string, Inc>;
  readonly packetsOut: Record<string, Inc>;
  readonly bytesIn: Inc;
  readonly bytesOut: Inc;
  readonly dropped: Record<DropReason, Inc>;
  readonly disconnects: Counter<'reason'>;
  readonly queued: Gauge;
  readonly inflight: Gauge;
  readonly retained: Gauge;
  readonly retainedBytes: Gauge;
  readonly sessions: Gauge;
  readonly sessionsPersisted: Counter;
  readonly storeBatches: Counter;
  readonly storePending: Gauge;
  /** Failed store write batches by error code (each is retried; see Core's durability contract). */
  readonly storeFailures: Counter<'code'>;
  /** 1 while the last store write failed (batches are being retried), else 0. */
  readonly storeDegraded: Gauge;
  /** Store operations that were messages dropped when loading because they no longer decode. */
  readonly storeUndecodable: Counter<'kind'>;
  /** Failures caught in the broker's background work (timers), by task. */
  readonly backgroundErrors: Counter<'task'>;
  readonly latency: Histogram;
  readonly protocolErrors: Counter<'reason'>;
  /** CONNECTs refused with a CONNACK, by reason code name (e.g. CONNECTION_RATE_EXCEEDED, NOT_AUTHORIZED). */
  readonly connectsRefused: Counter<'reason'>;
}

export interface GaugeSample {
  readonly sessions: number;
  readonly retained: number;
  readonly retainedBytes: number;
  readonly queued: number;
  readonly inflight: number;
  readonly storePending: number;
}

/** `sample` is read at scrape time for the queue-depth and size gauges (never on the hot path). */
export function createBrokerMetrics(registry: Registry, sample: () => GaugeSample): BrokerMetrics {
  const r = [registry];
  const sampled = (name: string, help: string, key: keyof GaugeSample) =>
    new Gauge({
      name,
      help,
      registers: r,
      collect() {
        this.set(sample()[key]);
      },
    });
  const packets = hotCounter(
    registry,
    'thingstead_mqtt_packets_total',
    'MQTT packets by direction and type.',
    ['direction', 'type'],
  );
  const bytes = hotCounter(registry, 'thingstead_mqtt_bytes_total', 'MQTT bytes by direction.', [
    'direction',
  ]);
  const dropped = hotCounter(
    registry,
    'thingstead_mqtt_messages_dropped_total',
    'Messages not delivered, by reason.',
    ['reason'],
  );
  const bind = (direction: string) =>
    Object.fromEntries(PACKET_TYPES.map((t) => [t, packets(direction, t)])) as Record<string, Inc>;
  const reasons: DropReason[] = [
    'queue_full',
    'not_authorized_publish',
    'not_authorized_receive',
    'packet_too_large',
    'payload_too_large',
    'invalid_topic',
    'invalid_payload_format',
    'expired',
    'slow_consumer',
    'session_ended',
    'store_unavailable',
    'subscription_revoked',
    'encode_failed',
    'retained_quota',
    'quota_publish',
  ];
  return {
    connections: new Gauge({
      name: 'thingstead_mqtt_connections',
      help: 'Open MQTT connections.',
      registers: r,
    }),
    packetsIn: bind('in'),
    packetsOut: bind('out'),
    bytesIn: bytes('in'),
    bytesOut: bytes('out'),
    dropped: Object.fromEntries(reasons.map((x) => [x, dropped(x)])) as unknown as Record<DropReason, Inc>,
    disconnects: new Counter({
      name: 'thingstead_mqtt_disconnects_total',
      help: 'Connections closed, by lifecycle disconnect reason.',
      labelNames: ['reason'],
      registers: r,
    }),
    queued: sampled(
      'thingstead_mqtt_queued_messages',
      'Messages queued for sessions (offline or beyond the in-flight window).',
      'queued',
    ),
    inflight: sampled(
      'thingstead_mqtt_inflight_messages',
      'Outbound QoS 1/2 messages awaiting acknowledgement.',
      'inflight',
    ),
    retained: sampled('thingstead_mqtt_retained_messages', 'Retained messages.', 'retained'),
    retainedBytes: sampled(
      'thingstead_mqtt_retained_bytes',
      'Bytes of retained messages (payload + topic), against limits.maxRetainedBytes.',
      'retainedBytes',
    ),
    sessions: sampled('thingstead_mqtt_sessions', 'Sessions held (online and offline).', 'sessions'),
    sessionsPersisted: new Counter({
      name: 'thingstead_mqtt_sessions_persisted_total',
      help: 'Persistent session records written to the store.',
      registers: r,
    }),
    storeBatches: new Counter({
      name: 'thingstead_mqtt_store_batches_total',
      help: 'Store write batches (one transaction each).',
      registers: r,
    }),
    storeFailures: new Counter({
      name: 'thingstead_mqtt_store_write_failures_total',
      help: 'Store write batches that failed (and were kept for retry), by error code.',
      labelNames: ['code'],
      registers: r,
    }),
    storeDegraded: new Gauge({
      name: 'thingstead_mqtt_store_degraded',
      help: '1 while MQTT store writes are failing and being retried (acknowledgements that need them wait or are refused).',
      registers: r,
    }),
    backgroundErrors: new Counter({
      name: 'thingstead_mqtt_background_errors_total',
      help: 'Failures caught in the broker background work (will timers, session expiry, sweeps), by task.',
      labelNames: ['task'],
      registers: r,
    }),
    storeUndecodable: new Counter({
      name: 'thingstead_mqtt_store_undecodable_total',
      help: 'Stored messages dropped at load because they no longer decode (e.g. written by an older version), by kind.',
      labelNames: ['kind'],
      registers: r,
    }),
    storePending: sampled(
      'thingstead_mqtt_store_pending_ops',
      'Store operations not yet written (the current batch plus any kept for retry).',
      'storePending',
    ),
    latency: new Histogram({
      name: 'thingstead_mqtt_delivery_latency_seconds',
      help: 'Ingress-to-delivery latency (time from a PUBLISH being read to the delivery being written).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: r,
    }),
    protocolErrors: new Counter({
      name: 'thingstead_mqtt_protocol_errors_total',
      help: 'Connections closed for protocol violations, malformed or oversize packets, by reason.',
      labelNames: ['reason'],
      registers: r,
    }),
    connectsRefused: new Counter({
      name: 'thingstead_mqtt_connects_refused_total',
      help: 'CONNECTs refused with a CONNACK, by reason code name.',
      labelNames: ['reason'],
      registers: r,
    }),
  };
}
