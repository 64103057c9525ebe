import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { IoTClient } from '@aws-sdk/client-iot';
import { createAwsApi, createHttpServer } from '../../src/api/index.js';
import {
  openCredentialStore,
  type AccessKeyWithSecret,
  type CredentialStore,
} from '../../src/identity/index.js';
import { createLogger, createMetricsRegistry } from '../../src/observability/index.js';
import { createRegistry, registryOperations, type ThingRegistry } from '../../src/registry/index.js';
import { openDatabase, type Database } from '../../src/store/index.js';

/**
 * Builds the AWS-compatible API from its parts (HTTP server + dispatcher + registry + access keys over a
 * real SQLite file or a fresh PostgreSQL schema), on 127.0.0.1 port 0. Used by the contract suite and the
 * SDK/CLI compat tests; the full-platform test lives in test/integration/registry-platform.test.ts.
 */

export type StoreKind = 'sqlite' | 'postgres';

const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/test';

/** The PostgreSQL URL to test against, or null (skip) when none is reachable; fails under CI=true. */
export async function postgresUrl(): Promise<string | null> {
  const url = process.env.THINGSTEAD_TEST_DATABASE_URL ?? DEFAULT_PG;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return url;
  } catch (err) {
    if (process.env.CI === 'true')
      throw new Error(`PostgreSQL at ${url} is required under CI: ${(err as Error).message}`, {
        cause: err,
      });
    console.warn(`SKIPPING PostgreSQL tests: ${url} is not reachable (${(err as Error).message})`);
    return null;
  }
}

/** Create a unique schema and return a URL whose connections use it as search_path, plus a dropper. */
export async function freshPgSchema(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const sep = url.includes('?') ? '&' : '?';
  return {
    url: `${url}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

export interface ApiHarness {
  readonly endpoint: string;
  readonly db: Database;
  readonly registry: ThingRegistry;
  readonly credentials: CredentialStore;
  readonly admin: AccessKeyWithSecret;
  readonly dataDir: string;
  /** Published registry events, in order. */
  readonly published: Array<{ topic: string; payload: any }>;
  /** Clients connected as seen by connectivity.connected (tests flip it). */
  readonly connected: Set<string>;
  client(key?: { accessKeyId: string; secretAccessKey: string }): IoTClient;
  close(): Promise<void>;
}

export async function startApi(kind: StoreKind = 'sqlite', pgUrl?: string): Promise<ApiHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-api-'));
  const schema = kind === 'postgres' ? await freshPgSchema(pgUrl!) : null;
  const db = await openDatabase({ dataDir, databaseUrl: schema?.url ?? null });
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const metrics = createMetricsRegistry({ processMetrics: false });
  const credentials = await openCredentialStore({ db, dataDir, cacheMs: 0 });
  const admin = await credentials.create('admin', 'admin');
  const published: Array<{ topic: string; payload: any }> = [];
  const connected = new Set<string>();
  const registry = await createRegistry({
    db,
    region: 'us-east-1',
    accountId: '123456789012',
    isConnected: (name) => connected.has(name),
    publish: (topic, payload) => published.push({ topic, payload: JSON.parse(payload.toString()) }),
    endpointAddress: () => 'localhost',
  });
  const http = createHttpServer({ logger, metrics, health: () => [] });
  http.use(createAwsApi({ operations: registryOperations(registry), credentials, logger, metrics }));
  const addr = await http.listen('127.0.0.1', 0);
  const endpoint = `http://127.0.0.1:${addr.port}`;
  return {
    endpoint,
    db,
    registry,
    credentials,
    admin,
    dataDir,
    published,
    connected,
    client(key = admin) {
      return new IoTClient({
        endpoint,
        region: 'us-east-1',
        maxAttempts: 1,
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      });
    },
    async close() {
      await http.close();
      await registry.close();
      await db.close();
      await schema?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
