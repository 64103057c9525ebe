import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { AckPolicy, connect, type NatsConnection } from 'nats';
import type { Config } from '../config/index.js';
import type { Broker, Publisher } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import { kafkaClientConfig } from './sinks/index.js';

export type SourceConfig = Config['rules']['sources'][number];

/**
 * Stream sources: records consumed from a Kafka topic or a JetStream subject enter the platform as MQTT
 * messages (QoS 1) on the configured topic, so they flow through the same rules, store and subscribers as
 * device traffic. At-least-once: a record is acknowledged (Kafka offset committed after `eachMessage`
 * returns, JetStream ack) only after the broker has routed it.
 */
export interface Source {
  readonly kind: 'kafka' | 'nats';
  /** Records routed so far. */
  readonly received: () => number;
  close(): Promise<void>;
}

/** `{key}` (Kafka record key) and `{subject}` (NATS subject, dots as slashes) in mqttTopic. */
export function sourceTopic(template: string, vars: { key?: string | null; subject?: string }): string {
  return template
    .replace(/\{key\}/g, vars.key ?? '')
    .replace(/\{subject\}/g, (vars.subject ?? '').split('.').join('/'));
}

/**
 * The MQTT payload for a record. `keyvalue` turns text such as `temperature=25` or `t=21.5,h=40` (pairs
 * separated by commas, ampersands, semicolons or spaces) into a JSON object with numbers and booleans typed;
 * JSON records and records without pairs pass unchanged.
 */
export function sourcePayload(value: Buffer, format: 'raw' | 'keyvalue'): Buffer {
  if (format === 'raw') return value;
  const text = value.toString('utf8').trim();
  if (text.startsWith('{') || text.startsWith('[')) return value;
  const out: Record<string, unknown> = {};
  for (const part of text.split(/[,&;\s]+/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq);
    const v = part.slice(eq + 1);
    out[k] = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v)
      ? Number(v)
      : v === 'true'
        ? true
        : v === 'false'
          ? false
          : v;
  }
  return Object.keys(out).length ? Buffer.from(JSON.stringify(out)) : value;
}

export async function startSources(options: {
  sources: readonly SourceConfig[];
  broker: Broker;
  logger: Logger;
  natsServers: string | null;
}): Promise<Source[]> {
  const started: Source[] = [];
  try {
    for (const s of options.sources) {
      started.push(s.kind === 'kafka' ? await kafkaSource(s, options) : await natsSource(s, options));
    }
  } catch (err) {
    await Promise.all(started.map((s) => s.close()));
    throw err;
  }
  return started;
}

async function kafkaSource(
  s: Extract<SourceConfig, { kind: 'kafka' }>,
  o: { broker: Broker; logger: Logger },
): Promise<Source> {
  const config = kafkaClientConfig({ ...s.clientProperties, 'bootstrap.servers': s.brokers });
  const consumer: Consumer = new Kafka({ ...config, logLevel: logLevel.NOTHING }).consumer({
    groupId: s.groupId,
  });
  const publisher: Publisher = {
    clientId: `kafka:${s.topic}`,
    principal: { kind: 'internal', id: 'source:kafka' },
  };
  let received = 0;
  await consumer.connect();
  await consumer.subscribe({ topic: s.topic, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const key = message.key ? message.key.toString() : null;
      o.broker.publish(
        {
          topic: sourceTopic(s.mqttTopic, { key }),
          payload: sourcePayload(message.value ?? Buffer.alloc(0), s.payloadFormat),
          qos: 1,
          retain: false,
        },
        publisher,
      );
      received++;
    },
  });
  o.logger.info({ topic: s.topic, mqttTopic: s.mqttTopic }, 'Kafka source started');
  return { kind: 'kafka', received: () => received, close: () => consumer.disconnect() };
}

async function natsSource(
  s: Extract<SourceConfig, { kind: 'nats' }>,
  o: { broker: Broker; logger: Logger; natsServers: string | null },
): Promise<Source> {
  const servers = s.servers ?? o.natsServers;
  if (!servers)
    throw new Error(`NATS source on ${s.subject}: no servers (rules.natsServers or sources[].servers)`);
  const nc: NatsConnection = await connect({ servers: servers.split(','), maxReconnectAttempts: -1 });
  const jsm = await nc.jetstreamManager();
  // A durable pull consumer filtered on the subject: survives restarts, resumes where it stopped.
  await jsm.consumers.add(s.stream, {
    durable_name: s.durable,
    filter_subject: s.subject,
    ack_policy: AckPolicy.Explicit,
  });
  const consumer = await nc.jetstream().consumers.get(s.stream, s.durable);
  const messages = await consumer.consume({ max_messages: 256 });
  const publisher: Publisher = {
    clientId: `nats:${s.subject}`,
    principal: { kind: 'internal', id: 'source:nats' },
  };
  let received = 0;
  const loop = (async () => {
    for await (const m of messages) {
      o.broker.publish(
        {
          topic: sourceTopic(s.mqttTopic, { subject: m.subject }),
          payload: sourcePayload(Buffer.from(m.data), s.payloadFormat),
          qos: 1,
          retain: false,
        },
        publisher,
      );
      m.ack();
      received++;
    }
  })().catch((err: unknown) => o.logger.warn({ err, subject: s.subject }, 'NATS source stopped'));
  o.logger.info(
    { stream: s.stream, subject: s.subject, mqttTopic: s.mqttTopic },
    'NATS JetStream source started',
  );
  return {
    kind: 'nats',
    received: () => received,
    async close() {
      await messages.close();
      await loop;
      await nc.drain().catch(() => undefined);
    },
  };
}
