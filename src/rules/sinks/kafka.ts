import { Kafka, logLevel, type Producer, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { ActionError, type ActionRequest } from '../actions.js';
import type { ActionConfig } from '../types.js';

/** Kafka sends; one producer per distinct clientProperties, connected on first use and shared. */
export class KafkaSink {
  private readonly producers = new Map<string, Promise<Producer>>();

  async send(config: ActionConfig, r: Extract<ActionRequest, { kind: 'kafka' }>): Promise<void> {
    const c = config.kafka!;
    try {
      const producer = await this.producer(c);
      await producer.send(buildKafkaRecord(c.clientProperties, r));
    } catch (err) {
      const retriable = (err as { retriable?: boolean }).retriable !== false;
      throw new ActionError(`Kafka send to ${r.topic} failed: ${(err as Error).message}`, retriable);
    }
  }

  private producer(config: NonNullable<ActionConfig['kafka']>): Promise<Producer> {
    const cfg = kafkaClientConfig(config.clientProperties);
    const key = JSON.stringify(config.clientProperties);
    let p = this.producers.get(key);
    if (!p) {
      const producer = new Kafka({ ...cfg, logLevel: logLevel.NOTHING }).producer({
        allowAutoTopicCreation: false,
      });
      p = producer.connect().then(() => producer);
      this.producers.set(key, p);
      p.catch(() => this.producers.delete(key));
    }
    return p;
  }

  close(): Promise<unknown>[] {
    const tasks = [...this.producers.values()].map((p) =>
      p.then((pr) => pr.disconnect()).catch(() => undefined),
    );
    this.producers.clear();
    return tasks;
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
