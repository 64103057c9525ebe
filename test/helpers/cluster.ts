import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { ConfigInput } from '../../src/config/index.js';
import { freshSchema } from './postgres.js';
import { TEST_NATS_URL } from './nats.js';
import { startTestPlatform, waitFor, type TestPlatform } from './platform.js';

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

export interface SpawnedNode {
  readonly child: ChildProcess;
  readonly mqttUrl: string;
  readonly httpUrl: string;
  /** What the binary printed on stderr so far (the banner, errors). */
  stderr(): string;
  /** Wait until stderr shows `text` (fails at once if the process exits first). */
  printed(text: string, timeoutMs: number): Promise<void>;
}

/**
 * `thingstead up` (the built binary) as a cluster node of its own process, on free plain-MQTT and HTTP
 * ports with anonymous loopback access, so a test can kill it (`child.kill('SIGKILL')`).
 */
export async function spawnClusterNode(options: {
  databaseUrl: string;
  clusterName: string;
  dataDir: string;
  natsUrl?: string;
  args?: readonly string[];
  env?: Record<string, string>;
}): Promise<SpawnedNode> {
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    [join(process.cwd(), 'dist', 'cli', 'main.js'), 'up', ...(options.args ?? [])],
    {
      env: {
        ...process.env,
        THINGSTEAD_DATA_DIR: options.dataDir,
        THINGSTEAD_DATABASE_URL: options.databaseUrl,
        THINGSTEAD_NATS_URL: options.natsUrl ?? TEST_NATS_URL,
        THINGSTEAD_CLUSTER_NAME: options.clusterName,
        THINGSTEAD_ALLOW_ANONYMOUS: '1',
        THINGSTEAD_MQTT_PORT: String(mqttPort),
        THINGSTEAD_HTTP_PORT: String(httpPort),
        THINGSTEAD_MQTT_TLS_PORT: 'off',
        THINGSTEAD_LOG_LEVEL: 'warn',
        ...options.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    child,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    stderr: () => err,
    async printed(text, timeoutMs) {
      await waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`thingstead exited: ${err.slice(-800)}`);
          return err.includes(text);
        },
        timeoutMs,
        `thingstead to print "${text}"`,
      );
    },
  };
}
