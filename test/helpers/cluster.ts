import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { ConfigInput } from '../../src/config/index.js';
import { freshSchema } from './postgres.js';
import { TEST_NATS_URL } from './nats.js';
import { startTestPlatform, type TestPlatform } from './platform.js';

export interface TestCluster {
  readonly nodes: TestPlatform[];
  /** The settings every node of this cluster uses (start another node with them). */
  readonly config: ConfigInput;
  readonly dataDir: string;
  readonly schemaUrl: string;
  stop(): Promise<void>;
}

/**
 * N in-process nodes of one cluster: one fresh PostgreSQL schema, the test NATS under a cluster name of
 * their own (so clusters of parallel test files never meet), one data directory (one CA).
 */
export async function startTestCluster(n: number, overrides: ConfigInput = {}): Promise<TestCluster> {
  const schema = await freshSchema('cl');
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-cluster-'));
  const o = overrides as Record<string, any>;
  const config = {
    ...overrides,
    databaseUrl: schema.url,
    cluster: {
      natsUrl: TEST_NATS_URL,
      name: schema.schema.replace(/[^A-Za-z0-9_-]/g, '_'),
      heartbeatMs: 200,
      deadAfterMs: 1500,
      ...(o.cluster ?? {}),
    },
  } as ConfigInput;
  const nodes: TestPlatform[] = [];
  for (let i = 0; i < n; i++) nodes.push(await startTestPlatform(config, { dataDir }));
  return {
    nodes,
    config,
    dataDir,
    schemaUrl: schema.url,
    async stop() {
      for (const node of nodes) await node.stop().catch(() => undefined);
      await schema.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A port free at the moment of asking (for a node started as its own process). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

export type Received = { topic: string; payload: string; retain: boolean };
export type CollectingClient = MqttClient & { got: Received[] };

/**
 * An MQTT 5 client (no reconnects) collecting every message from the start: queued messages arrive with
 * CONNACK, before the caller could attach a listener.
 */
export async function connectCollecting(
  url: string,
  clientId: string,
  opts: mqtt.IClientOptions = {},
): Promise<CollectingClient> {
  const c = mqtt.connect(url, {
    clientId,
    reconnectPeriod: 0,
    protocolVersion: 5,
    ...opts,
  }) as CollectingClient;
  c.got = [];
  c.on('message', (topic, payload, packet) =>
    c.got.push({ topic, payload: payload.toString(), retain: packet.retain }),
  );
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  return c;
}
