import { Kafka, logLevel, type Producer, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import pg from 'pg';
import type { Broker } from '../mqtt/index.js';
import type { Point } from '../timeseries/index.js';
import { ActionError, type ActionRequest } from './actions.js';
import type { ActionConfig } from './types.js';

/** Where deliveries go. Connections are shared per destination and opened on first use. */
export interface SinkDeps {
  readonly broker: Broker | null;
  readonly timeseries: { write(points: readonly Point[]): Promise<void> } | null;
  /** Default NATS servers (comma-separated) for nats actions without `servers`. */
  readonly natsServers: string | null;
  /** Default PostgreSQL URL for postgres actions without `connectionString`. */
  readonly postgresUrl: string | null;
}

/**
 * Republish hop count per payload Buffer (the broker shares payload Buffers instead of copying them, so the
 * engine can recognise its own republished messages and stop a rule that feeds itself).
 */
export const REPUBLISH_DEPTH = new WeakMap<Buffer, number>();

/** Executes prepared action requests. Throws ActionError with `retryable` set by the failure's nature. */
export class Sinks {
  private readonly nats = new Map<string, Promise<NatsConnection>>();
  private readonly kafka = new Map<string, Promise<Producer>>();
  private readonly pools = new Map<string, pg.Pool>();
  constructor(private readonly deps: SinkDeps) {}

  /** `depth`: republish hops of the message that triggered this delivery (republish only). */
  async execute(config: ActionConfig, request: ActionRequest, depth = 0): Promise<void> {
    switch (request.kind) {
      case 'republish':
        return this.republish(request, depth);
      case 'http':
        return this.http(request);
      case 'nats':
        return this.natsPublish(config, request);
      case 'kafka':
        return this.kafkaSend(config, request);
      case 'postgres':
        return this.pgInsert(config, request);
      case 'timeseries':
        if (!this.deps.timeseries) throw new ActionError('time-series store is not available', true);
        try {
          await this.deps.timeseries.write(request.points);
        } catch (err) {
          throw new ActionError(`time-series write failed: ${(err as Error).message}`, true);
        }
        return;
    }
  }

  private republish(r: Extract<ActionRequest, { kind: 'republish' }>, depth: number): void {
    if (!this.deps.broker) throw new ActionError('broker is not available', true);
    const userProperties = r.userProperties;
    // An exactly-sized, unpooled Buffer: the broker keeps it as is (no copy), so the depth mark survives.
    const decoded = Buffer.from(r.payload, 'base64');
    const payload = Buffer.allocUnsafeSlow(decoded.length);
    decoded.copy(payload);
    REPUBLISH_DEPTH.set(payload, depth + 1);
    this.deps.broker.publish(
      {
        topic: r.topic,
        payload,
        qos: r.qos,
        retain: false,
        properties: {
          ...(r.contentType ? { contentType: r.contentType } : {}),
          ...(r.responseTopic ? { responseTopic: r.responseTopic } : {}),
          ...(userProperties ? { userProperties } : {}),
        },
      },
      null,
    );
  }

  private async http(r: Extract<ActionRequest, { kind: 'http' }>): Promise<void> {
    let res: Response;
    try {
      res = await fetch(r.url, {
        method: 'POST',
        headers: r.headers,
        body: Buffer.from(r.body, 'base64'),
        signal: AbortSignal.timeout(r.timeoutMs),
        redirect: 'manual',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new ActionError(`POST ${r.url} failed: ${cause ?? (err as Error).message}`, true);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return;
    // 5xx, 429 and 408 are worth retrying; other statuses will not change by themselves.
    const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
    throw new ActionError(`POST ${r.url} answered HTTP ${res.status}`, retryable);
  }

  private natsConnection(servers: string): Promise<NatsConnection> {
    let c = this.nats.get(servers);
    if (!c) {
      c = connect({
        servers: servers.split(','),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 2000,
      });
      this.nats.set(servers, c);
      c.then(
        (nc) => void nc.closed().then(() => this.nats.delete(servers)),
        () => this.nats.delete(servers),
      );
    }
    return c;
  }

  private async natsPublish(
    config: ActionConfig,
    r: Extract<ActionRequest, { kind: 'nats' }>,
  ): Promise<void> {
    const servers = config.nats?.servers ?? this.deps.natsServers;
    if (!servers)
      throw new ActionError('no NATS servers configured (rules.natsServers or nats.servers)', false);
    let nc: NatsConnection;
    try {
      nc = await this.natsConnection(servers);
    } catch (err) {
      throw new ActionError(`NATS connect to ${servers} failed: ${(err as Error).message}`, true);
    }
    const h = natsHeaders();
    for (const [k, v] of Object.entries(r.headers)) h.set(k, v);
    try {
      // JetStream publish resolves only once the stream has stored the message (the PubAck).
      await nc.jetstream().publish(r.subject, Buffer.from(r.payload, 'base64'), {
        headers: Object.keys(r.headers).length ? h : undefined,
        timeout: r.timeoutMs,
      });
    } catch (err) {
      throw new ActionError(`JetStream publish to ${r.subject} failed: ${(err as Error).message}`, true);
    }
  }

  private kafkaProducer(config: NonNullable<ActionConfig['kafka']>): Promise<Producer> {
    const cfg = kafkaClientConfig(config.clientProperties);
    const key = JSON.stringify(config.clientProperties);
    let p = this.kafka.get(key);
    if (!p) {
      const producer = new Kafka({ ...cfg, logLevel: logLevel.NOTHING }).producer({
        allowAutoTopicCreation: false,
      });
      p = producer.connect().then(() => producer);
      this.kafka.set(key, p);
      p.catch(() => this.kafka.delete(key));
    }
    return p;
  }

  private async kafkaSend(config: ActionConfig, r: Extract<ActionRequest, { kind: 'kafka' }>): Promise<void> {
    const c = config.kafka!;
    try {
      const producer = await this.kafkaProducer(c);
      await producer.send(buildKafkaRecord(c.clientProperties, r));
    } catch (err) {
      const retriable = (err as { retriable?: boolean }).retriable !== false;
      throw new ActionError(`Kafka send to ${r.topic} failed: ${(err as Error).message}`, retriable);
    }
  }

  private pool(url: string): pg.Pool {
    let p = this.pools.get(url);
    if (!p) {
      p = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 3000 });
      p.on('error', () => undefined); // idle client errors: the next query reconnects
      this.pools.set(url, p);
    }
    return p;
  }

  private async pgInsert(
    config: ActionConfig,
    r: Extract<ActionRequest, { kind: 'postgres' }>,
  ): Promise<void> {
    const c = config.postgres!;
    const url = c.connectionString ?? this.deps.postgresUrl;
    if (!url)
      throw new ActionError(
        'no PostgreSQL URL configured (rules.postgresUrl or postgres.connectionString)',
        false,
      );
    const table = c.table
      .split('.')
      .map((p) => `"${p}"`)
      .join('.');
    const cols = c.columns.map((col) => `"${col.name}"`).join(', ');
    const params = c.columns.map((_, i) => `$${i + 1}`).join(', ');
    try {
      await this.pool(url).query(`INSERT INTO ${table} (${cols}) VALUES (${params})`, r.values);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      // SQL errors in classes 22 (data), 23 (constraint) and 42 (syntax/undefined table) will not heal alone.
      const permanent = /^(22|23|42)/.test(code);
      throw new ActionError(`INSERT INTO ${c.table} failed: ${(err as Error).message}`, !permanent);
    }
  }

  async close(): Promise<void> {
    const tasks: Promise<unknown>[] = [];
    for (const c of this.nats.values()) tasks.push(c.then((nc) => nc.close()).catch(() => undefined));
    for (const p of this.kafka.values()) tasks.push(p.then((pr) => pr.disconnect()).catch(() => undefined));
    for (const p of this.pools.values()) tasks.push(p.end().catch(() => undefined));
    this.nats.clear();
    this.kafka.clear();
    this.pools.clear();
    await Promise.all(tasks);
  }
}

/**
 * kafkajs client settings from AWS's `clientProperties` (reference §10.6): bootstrap.servers,
 * security.protocol SSL|SASL_SSL (TLS on), sasl.mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 with
 * sasl.plain.* / sasl.scram.* credentials, and PEM material in ssl.ca.pem / ssl.cert.pem / ssl.key.pem.
 */
export function kafkaClientConfig(props: Readonly<Record<string, string>>): KafkaConfig {
  const brokers = (props['bootstrap.servers'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const protocol = (props['security.protocol'] ?? 'PLAINTEXT').toUpperCase();
  const config: KafkaConfig = { clientId: props['client.id'] ?? 'thingstead-rules', brokers };
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const ca = props['ssl.ca.pem'];
    const cert = props['ssl.cert.pem'];
    const key = props['ssl.key.pem'];
    config.ssl =
      ca || cert || key
        ? { ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) }
        : true;
  }
  if (protocol === 'SASL_SSL' || protocol === 'SASL_PLAINTEXT') {
    const mechanism = (props['sasl.mechanism'] ?? 'PLAIN').toUpperCase();
    const sasl: SASLOptions =
      mechanism === 'PLAIN'
        ? {
            mechanism: 'plain',
            username: props['sasl.plain.username'] ?? '',
            password: props['sasl.plain.password'] ?? '',
          }
        : mechanism === 'SCRAM-SHA-256'
          ? {
              mechanism: 'scram-sha-256',
              username: props['sasl.scram.username'] ?? '',
              password: props['sasl.scram.password'] ?? '',
            }
          : {
              mechanism: 'scram-sha-512',
              username: props['sasl.scram.username'] ?? '',
              password: props['sasl.scram.password'] ?? '',
            };
    config.sasl = sasl;
  }
  return config;
}

/** The kafkajs `send` argument for one delivery: acks and compression from clientProperties. */
export function buildKafkaRecord(
  props: Readonly<Record<string, string>>,
  r: Extract<ActionRequest, { kind: 'kafka' }>,
) {
  const acks = props.acks === '0' ? 0 : props.acks === 'all' || props.acks === '-1' ? -1 : 1;
  const compressionType = (props['compression.type'] ?? 'none').toLowerCase();
  return {
    topic: r.topic,
    acks,
    // kafkajs ships gzip only; other codecs need plugins, so they fall back to none.
    compression: compressionType === 'gzip' ? 1 : 0,
    messages: [
      {
        value: Buffer.from(r.value, 'base64'),
        ...(r.key !== null ? { key: r.key } : {}),
        ...(r.partition !== null ? { partition: r.partition } : {}),
        ...(Object.keys(r.headers).length ? { headers: r.headers } : {}),
      },
    ],
  };
}
