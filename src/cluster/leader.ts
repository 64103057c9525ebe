/**
 * Leadership for work that must run once per cluster, not once per node (job rollouts, time-series
 * retention, the provisioning sweep, the shadow tombstone purge, continuous analytics exports): one
 * PostgreSQL session-level advisory lock per task, taken with `pg_try_advisory_lock` on one connection of
 * its own that the node holds for its life. PostgreSQL releases a session's locks when its connection or
 * process dies, so another node takes the task on its next try (every `cluster.heartbeatMs`).
 *
 * Lock keys: `pg_try_advisory_lock` is database-wide, so a task's key is a 64-bit hash of the connection's
 * `current_schema()`, the cluster name and the task name; clusters in other schemas of one database (test
 * runs, deployments side by side) never hold each other's tasks.
 *
 * Contract:
 * - `holds(task)` is synchronous and cheap (a map lookup and a clock read): call it at the start of each
 *   tick and skip the tick when it is false.
 * - It is true only while the lock is confirmed: the lock connection answered a round that started within
 *   the last three heartbeats. A connection error or a failed round drops every task at once (the
 *   connection is closed, so PostgreSQL releases what it still held); a paused event loop reads false
 *   until the next round confirms again.
 * - It is not a fencing token: when the holder's connection breaks silently, PostgreSQL may release the
 *   lock (and another node take it) a little before the holder notices (its next round, bounded by the
 *   query timeout). Single-runner work keeps its writes conditional, as it already must across restarts;
 *   leadership removes the duplicate work and notifications, not the need for safe writes.
 * - A task name not given at start is tried from the first `holds` on (false until the next round).
 *
 * One process without a cluster has no Leadership: the contexts' `runsHere` defaults to always true there
 * (and the jobs rollout keeps its own advisory lock for processes sharing PostgreSQL without NATS).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { Gauge, rateLimitedLog, type Logger, type Registry } from '../observability/index.js';

/** The tasks of this platform that run once per cluster (docs/cluster.md, "Work that runs once per cluster"). */
export const CLUSTER_TASKS = [
  'jobs.rollout',
  'timeseries.retention',
  'provisioning.sweep',
  'shadow.purge',
  'metering.export',
] as const;

export interface Leadership {
  /** Does this node run `task` now? Hot path: synchronous, no I/O. */
  holds(task: string): boolean;
  /** The tasks this node holds now (cluster view, logs). */
  held(): string[];
  /** Give every task up (unlocks, closes the lock connection). Call after the work using it stopped. */
  close(): Promise<void>;
}

export interface LeadershipOptions {
  /** The cluster's PostgreSQL (its search_path decides `current_schema()`). */
  readonly databaseUrl: string;
  readonly cluster: string;
  readonly tasks: readonly string[];
  readonly heartbeatMs: number;
  readonly logger: Logger;
  readonly metrics?: Registry | undefined;
}

/** The advisory-lock key of `task`: a signed 64-bit integer, as text (PostgreSQL bigint). */
export function lockKey(schema: string, cluster: string, task: string): string {
  const digest = createHash('sha256').update(`${schema}\u0000${cluster}\u0000${task}`).digest();
  return digest.readBigInt64BE(0).toString();
}

interface TaskState {
  key: string | null;
  held: boolean;
}

/**
 * Join the cluster's leadership: one lock connection, a first round before it returns (so a node that
 * starts alone leads at once), then a round every heartbeat.
 * @example const lead = await startLeadership({ databaseUrl, cluster: 'thingstead', tasks: CLUSTER_TASKS, heartbeatMs: 1000, logger }); if (lead.holds('jobs.rollout')) await tick();
 */
export async function startLeadership(options: LeadershipOptions): Promise<Leadership> {
  const { heartbeatMs, logger: log } = options;
  const warn = rateLimitedLog(log);
  const leaseMs = 3 * heartbeatMs;
  const tasks = new Map<string, TaskState>();
  let schema: string | null = null;
  let client: pg.Client | null = null;
  /** Start of the last round the lock connection answered. */
  let confirmedAt = 0;
  let closed = false;
  let round: Promise<void> | null = null;

  const add = (task: string) => {
    const t: TaskState = {
      key: schema === null ? null : lockKey(schema, options.cluster, task),
      held: false,
    };
    tasks.set(task, t);
    return t;
  };
  for (const task of options.tasks) add(task);

  /** Every task is gone (the connection broke or a round failed); the connection is closed. */
  const lose = (c: pg.Client, why: string, err?: unknown) => {
    if (client !== c) return;
    client = null;
    const had = [...tasks].filter(([, t]) => t.held).map(([name]) => name);
    for (const t of tasks.values()) t.held = false;
    if (had.length)
      log.warn({ err, tasks: had }, `cluster leadership lost (${why}); another node takes over`);
    else if (!closed) warn({ err }, `cluster leadership connection failed (${why}); retrying`);
    c.end().catch(() => undefined);
  };

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: `thingstead leadership ${options.cluster}`,
      keepAlive: true,
      connectionTimeoutMillis: Math.max(1000, 2 * heartbeatMs),
      query_timeout: Math.max(1000, 2 * heartbeatMs),
    });
    c.on('error', (err) => lose(c, 'connection error', err));
    c.on('end', () => lose(c, 'connection closed'));
    try {
      await c.connect();
      const { rows } = await c.query<{ s: string }>("SELECT coalesce(current_schema(), 'public') AS s");
      schema = rows[0]?.s ?? 'public';
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    for (const [name, t] of tasks) t.key = lockKey(schema, options.cluster, name);
    return c;
  };

  /** Confirm the connection and try every task not held (one statement). */
  const once = async (): Promise<void> => {
    if (closed) return;
    const started = Date.now();
    let c: pg.Client | null = client;
    try {
      if (c === null) {
        c = await connect();
        if (closed) {
          await c.end();
          return;
        }
        client = c;
      }
      const wanted = [...tasks].filter(([, t]) => !t.held && t.key !== null);
      if (wanted.length === 0) {
        await c.query('SELECT 1');
      } else {
        const { rows } = await c.query<{ k: string; ok: boolean }>(
          'SELECT k::text AS k, pg_try_advisory_lock(k) AS ok FROM unnest($1::bigint[]) AS k',
          [wanted.map(([, t]) => t.key)],
        );
        if (client !== c) return;
        const won = new Set(rows.filter((r) => r.ok).map((r) => r.k));
        for (const [name, t] of wanted)
          if (won.has(t.key!)) {
            t.held = true;
            log.info({ task: name }, 'cluster leadership: this node runs the task');
          }
      }
      if (client === c) confirmedAt = started;
    } catch (err) {
      if (c !== null) lose(c, 'lock round failed', err);
      else warn({ err }, 'cluster leadership: PostgreSQL unreachable; retrying');
    }
  };
  const tick = () => {
    round ??= once().finally(() => (round = null));
    return round;
  };

  const holds = (task: string): boolean => {
    const t = tasks.get(task) ?? add(task);
    return !closed && t.held && Date.now() - confirmedAt < leaseMs;
  };

  if (options.metrics) {
    new Gauge({
      name: 'thingstead_cluster_leader',
      help: 'Single-runner tasks: 1 while this node runs the task for the cluster, else 0',
      labelNames: ['task'],
      registers: [options.metrics],
      collect() {
        for (const task of tasks.keys()) this.set({ task }, holds(task) ? 1 : 0);
      },
    });
  }

  await tick();
  const timer = setInterval(() => void tick(), heartbeatMs);
  timer.unref();

  return {
    holds,
    held: () => [...tasks.keys()].filter(holds),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await round;
      const c = client;
      client = null;
      for (const t of tasks.values()) t.held = false;
      if (c === null) return;
      await c.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      await c.end().catch(() => undefined);
    },
  };
}
