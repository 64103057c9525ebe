import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeadership, type Leadership } from '../../src/cluster/index.js';
import { createLogger } from '../../src/observability/index.js';
import { freshSchema, postgresAvailable, TEST_PG_URL } from '../helpers/postgres.js';
import { waitFor } from '../helpers/platform.js';

/**
 * The leadership primitive (src/cluster/leader.ts) on the machine's PostgreSQL: one holder per task among
 * nodes sharing a schema, take-over within a few heartbeats when the holder closes, is killed (SIGKILL of
 * its process) or loses its lock connection, and no collision between clusters in other schemas.
 */

const ready = await postgresAvailable('cluster leadership tests');
const HEARTBEAT = 100;
const TASKS = ['jobs.rollout', 'timeseries.retention', 'metering.export'];
const logger = createLogger('silent');

describe.skipIf(!ready)('cluster leadership', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let other: Awaited<ReturnType<typeof freshSchema>>;
  const open: Leadership[] = [];
  const lead = async (url = schema.url, cluster = 'c1') => {
    const l = await startLeadership({
      databaseUrl: url,
      cluster,
      tasks: TASKS,
      heartbeatMs: HEARTBEAT,
      logger,
    });
    open.push(l);
    return l;
  };
  /** Holders of each task, sampled at one instant. */
  const holders = (nodes: Leadership[]) =>
    Object.fromEntries(TASKS.map((t) => [t, nodes.filter((n) => n.holds(t)).length]));
  const one = Object.fromEntries(TASKS.map((t) => [t, 1]));

  beforeAll(async () => {
    schema = await freshSchema('lead');
    other = await freshSchema('lead');
  });
  afterAll(async () => {
    for (const l of open) await l.close();
    await schema?.drop();
    await other?.drop();
  });

  it('exactly one node of three holds each task, and another takes it within a few heartbeats of a close', async () => {
    const nodes = [await lead(), await lead(), await lead()];
    await waitFor(() => TASKS.every((t) => nodes.some((n) => n.holds(t))), 2000, 'every task held');
    // Sampled over several heartbeats: never two holders, never none.
    for (let i = 0; i < 20; i++) {
      expect(holders(nodes)).toEqual(one);
      await new Promise((r) => setTimeout(r, HEARTBEAT / 2));
    }
    const holder = nodes.find((n) => n.holds('jobs.rollout'))!;
    const held = holder.held();
    expect(held).toContain('jobs.rollout');
    const t0 = Date.now();
    await holder.close();
    expect(holder.holds('jobs.rollout')).toBe(false);
    const rest = nodes.filter((n) => n !== holder);
    await waitFor(() => held.every((t) => rest.some((n) => n.holds(t))), 10 * HEARTBEAT, 'take-over');
    expect(Date.now() - t0).toBeLessThan(6 * HEARTBEAT);
    expect(holders(rest)).toEqual(one);
  });

  it('clusters in other schemas of the database, or under another name, hold their tasks of their own', async () => {
    const here = await lead(schema.url, 'c2');
    const there = await lead(other.url, 'c2');
    const named = await lead(other.url, 'c3');
    await waitFor(() => here.holds('jobs.rollout'), 2000, 'leader in schema 1');
    await waitFor(() => there.holds('jobs.rollout'), 2000, 'leader in schema 2');
    await waitFor(() => named.holds('jobs.rollout'), 2000, 'leader of cluster c3');
    expect(here.held().sort()).toEqual([...TASKS].sort());
  });

  it('a task named only by holds() is tried from then on', async () => {
    const l = await lead(schema.url, 'c4');
    expect(l.holds('late.task')).toBe(false);
    await waitFor(() => l.holds('late.task'), 10 * HEARTBEAT, 'the late task');
  });

  it('a holder whose lock connection is cut stops holding at once; another node takes over', async () => {
    const a = await lead(schema.url, 'c5');
    await waitFor(() => a.holds('metering.export'), 2000, 'a leads');
    const b = await lead(schema.url, 'c5');
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT));
    expect(b.holds('metering.export')).toBe(false);
    // Cut a's lock session (as a database failover or a network cut would): PostgreSQL releases its locks.
    const admin = new pg.Client({ connectionString: schema.url });
    await admin.connect();
    try {
      const pids = await admin.query<{ pid: number }>(
        `SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
         WHERE l.locktype = 'advisory' AND s.application_name = 'thingstead leadership c5'`,
      );
      expect(pids.rows).toHaveLength(1);
      await admin.query('SELECT pg_terminate_backend($1)', [pids.rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    await waitFor(() => !a.holds('metering.export'), 3 * HEARTBEAT, 'a lets go');
    await waitFor(() => b.holds('metering.export') || a.holds('metering.export'), 10 * HEARTBEAT, 'a holder');
    for (let i = 0; i < 10; i++) {
      expect(holders([a, b])).toEqual(one);
      await new Promise((r) => setTimeout(r, HEARTBEAT / 2));
    }
  });

  it('a holder killed with SIGKILL: its locks go with its connection and a node takes over', async () => {
    // The holder is a process of its own, so it can be killed.
    const script = `
      import { startLeadership } from './src/cluster/leader.ts';
      import { createLogger } from './src/observability/index.ts';
      const l = await startLeadership({ databaseUrl: process.env.URL, cluster: 'c6', tasks: ${JSON.stringify(TASKS)},
        heartbeatMs: ${HEARTBEAT}, logger: createLogger('silent') });
      setInterval(() => process.stdout.write(l.held().length === ${TASKS.length} ? 'held\\n' : 'not\\n'), 20);
    `;
    // node itself (not the tsx wrapper, whose SIGKILL would leave its child running) with tsx's loader.
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, URL: schema.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`holder exited: ${out.slice(-800)}`);
          return out.includes('held');
        },
        20_000,
        'the child holds every task',
      );
      const b = await lead(schema.url, 'c6');
      await new Promise((r) => setTimeout(r, 3 * HEARTBEAT));
      expect(b.held()).toEqual([]);
      const t0 = Date.now();
      child.kill('SIGKILL');
      await waitFor(() => b.held().length === TASKS.length, 20 * HEARTBEAT, 'take-over after SIGKILL');
      expect(Date.now() - t0).toBeLessThan(6 * HEARTBEAT);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});

describe.skipIf(!ready)('cluster leadership without PostgreSQL', () => {
  it('holds nothing while the database is unreachable, and says so on /metrics as 0', async () => {
    const { Registry } = await import('../../src/observability/index.js');
    const metrics = new Registry();
    const url = TEST_PG_URL.replace(/:\d+\//, ':1/');
    const l = await startLeadership({
      databaseUrl: url,
      cluster: 'none',
      tasks: TASKS,
      heartbeatMs: HEARTBEAT,
      logger,
      metrics,
    });
    try {
      expect(l.held()).toEqual([]);
      const text = await metrics.metrics();
      expect(text).toContain('thingstead_cluster_leader{task="jobs.rollout"} 0');
    } finally {
      await l.close();
    }
  });
});
