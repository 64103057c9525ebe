import { migrate, type Database, type Migration, type Statement } from '../store/index.js';
import { groupCommit, valuesList } from './group-commit.js';

/**
 * Storage of the provisioning flows (the templates themselves are in templates-store.ts): ownership tokens,
 * the apply journal (what an unfinished registration must undo), attempt traces, and registration tasks
 * with their per-line results. One implementation over the portable Database API (`$n` placeholders);
 * times are epoch milliseconds.
 */

const DDL = `
  CREATE TABLE provisioning_tokens (
    token_hash TEXT PRIMARY KEY, certificate_id TEXT NOT NULL, claim_certificate_id TEXT, client_id TEXT,
    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, claimed_until BIGINT NOT NULL, used_at BIGINT);
  CREATE INDEX provisioning_tokens_expiry ON provisioning_tokens (used_at, expires_at);
  CREATE TABLE provisioning_journal (
    attempt_id TEXT PRIMARY KEY, flow TEXT NOT NULL, created_at BIGINT NOT NULL, lease_until BIGINT NOT NULL,
    undo TEXT NOT NULL);
  CREATE INDEX provisioning_journal_lease ON provisioning_journal (lease_until);
  CREATE TABLE provisioning_traces (
    attempt_id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, flow TEXT NOT NULL, template_name TEXT,
    result TEXT NOT NULL, reason TEXT, thing_name TEXT, certificate_id TEXT, body TEXT NOT NULL);
  CREATE INDEX provisioning_traces_time ON provisioning_traces (started_at, attempt_id);
  CREATE TABLE provisioning_tasks (
    task_id TEXT PRIMARY KEY, body TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL,
    last_modified_at BIGINT NOT NULL, success_count INTEGER NOT NULL, failure_count INTEGER NOT NULL,
    total INTEGER NOT NULL, message TEXT, lease_until BIGINT NOT NULL);
  CREATE INDEX provisioning_tasks_created ON provisioning_tasks (created_at, task_id);
  CREATE TABLE provisioning_task_lines (
    task_id TEXT NOT NULL, line INTEGER NOT NULL, ok INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (task_id, line));
`;

const CLAIMS_DDL = `
  CREATE TABLE provisioning_claims (
    certificate_id TEXT PRIMARY KEY, template_name TEXT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE INDEX provisioning_claims_expiry ON provisioning_claims (expires_at);
`;

export const PROVISIONING_FLOW_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'ownership tokens, apply journal, traces, registration tasks',
    sqlite: DDL,
    postgres: DDL,
  },
  {
    version: 2,
    description: 'claim certificates (CreateProvisioningClaim) and their expiry, for the sweep',
    sqlite: CLAIMS_DDL,
    postgres: CLAIMS_DDL,
  },
];

export interface TokenRow {
  readonly tokenHash: string;
  readonly certificateId: string;
  readonly claimCertificateId: string | null;
  readonly clientId: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface ClaimRow {
  readonly certificateId: string;
  readonly templateName: string;
  readonly expiresAt: number;
}

/** Why a token cannot be used (the refusal names it). */
export type TokenRefusal = 'unknown' | 'expired' | 'used' | 'busy';

export interface JournalRow {
  readonly attemptId: string;
  readonly flow: string;
  readonly createdAt: number;
  readonly undo: string;
}

export interface TraceRow {
  readonly attemptId: string;
  readonly startedAt: number;
  readonly flow: string;
  readonly templateName: string | null;
  readonly result: string;
  readonly reason: string | null;
  readonly thingName: string | null;
  readonly certificateId: string | null;
  /** The whole trace as JSON. */
  readonly body: string;
}

export interface TaskRow {
  readonly taskId: string;
  /** The task's request and its report secret, as JSON. */
  readonly body: string;
  readonly status: string;
  readonly createdAt: number;
  readonly lastModifiedAt: number;
  readonly successCount: number;
  readonly failureCount: number;
  readonly total: number;
  readonly message: string | null;
}

export interface FlowsStore {
  insertToken(row: TokenRow): Promise<void>;
  /**
   * Take a token for one registration attempt (single use): succeeds only when it exists, is unused, not
   * expired and not taken by another attempt (or that attempt's claim lapsed at `claimUntil`'s lease).
   */
  claimToken(
    tokenHash: string,
    now: number,
    claimUntil: number,
  ): Promise<{ ok: true; row: TokenRow } | { ok: false; reason: TokenRefusal }>;
  /** The attempt failed: the token may be used again (until it expires). */
  releaseToken(tokenHash: string): Promise<void>;
  /** The attempt succeeded: the token is spent. */
  spendToken(tokenHash: string, now: number): Promise<void>;
  /** Unused tokens past their expiry (oldest first), at most `limit`. */
  expiredTokens(now: number, limit: number): Promise<TokenRow[]>;
  deleteToken(tokenHash: string): Promise<void>;
  /** Spent tokens older than `before` (kept a while so a reuse is told "already used"). */
  purgeSpentTokens(before: number): Promise<number>;

  /** A claim certificate made by CreateProvisioningClaim, valid until `expiresAt` (epoch ms). */
  insertClaim(row: ClaimRow): Promise<void>;
  /** Claims past their expiry (oldest first), at most `limit`. */
  expiredClaims(now: number, limit: number): Promise<ClaimRow[]>;
  deleteClaim(certificateId: string): Promise<void>;

  insertJournal(row: JournalRow, leaseUntil: number): Promise<void>;
  deleteJournal(attemptId: string): Promise<void>;
  /** Every open journal entry (the journal holds only registrations in progress: a few rows). */
  journalIds(): Promise<{ attemptId: string; flow: string }[]>;
  /** Take the journal entries whose lease lapsed (their process died mid-apply), leasing them anew. */
  takeLapsedJournal(now: number, leaseUntil: number, limit: number): Promise<JournalRow[]>;

  insertTraces(rows: readonly TraceRow[]): Promise<void>;
  getTrace(attemptId: string): Promise<TraceRow | undefined>;
  listTraces(filter: {
    before?: { startedAt: number; attemptId: string } | undefined;
    templateName?: string | undefined;
    result?: string | undefined;
    thingName?: string | undefined;
    certificateId?: string | undefined;
    limit: number;
  }): Promise<TraceRow[]>;
  /** Keep the newest `keep` traces. */
  trimTraces(keep: number): Promise<number>;

  insertTask(row: TaskRow, leaseUntil: number): Promise<void>;
  getTask(taskId: string): Promise<TaskRow | undefined>;
  listTasks(options: {
    after?: string | undefined;
    status?: string | undefined;
    /** Only InProgress or Cancelling tasks whose lease lapsed by then (their process died). */
    lapsedAt?: number | undefined;
    limit: number;
  }): Promise<TaskRow[]>;
  updateTask(
    taskId: string,
    change: Partial<Pick<TaskRow, 'status' | 'successCount' | 'failureCount' | 'total' | 'message'>> & {
      lastModifiedAt: number;
      leaseUntil?: number;
    },
  ): Promise<void>;
  /** Take one task whose lease lapsed (its process died) with a new lease; none when another took it. */
  takeLapsedTasks(now: number, leaseUntil: number, taskId: string): Promise<TaskRow[]>;
  insertTaskLines(
    taskId: string,
    lines: readonly { line: number; ok: boolean; body: string }[],
  ): Promise<void>;
  deleteTaskLine(taskId: string, line: number): Promise<void>;
  /** How many results and errors a task has stored. */
  taskLineCounts(taskId: string): Promise<{ ok: number; failed: number }>;
  /** Lines already done (a resumed task skips them). */
  doneTaskLines(taskId: string): Promise<Set<number>>;
  taskLines(
    taskId: string,
    options: { ok: boolean; after: number; limit: number },
  ): Promise<{ line: number; body: string }[]>;
}

type Row = Record<string, unknown>;
/** Rows per multi-row statement (SQLite allows 32,766 parameters; traces have 9 columns). */
const ROWS_PER_STATEMENT = 100;
const num = (v: unknown) => Number(v);
const strOrNull = (v: unknown) =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? String(v) : null;

const tokenFromRow = (r: Row): TokenRow => ({
  tokenHash: String(r.token_hash),
  certificateId: String(r.certificate_id),
  claimCertificateId: strOrNull(r.claim_certificate_id),
  clientId: strOrNull(r.client_id),
  createdAt: num(r.created_at),
  expiresAt: num(r.expires_at),
});

const traceFromRow = (r: Row): TraceRow => ({
  attemptId: String(r.attempt_id),
  startedAt: num(r.started_at),
  flow: String(r.flow),
  templateName: strOrNull(r.template_name),
  result: String(r.result),
  reason: strOrNull(r.reason),
  thingName: strOrNull(r.thing_name),
  certificateId: strOrNull(r.certificate_id),
  body: String(r.body),
});

const taskFromRow = (r: Row): TaskRow => ({
  taskId: String(r.task_id),
  body: String(r.body),
  status: String(r.status),
  createdAt: num(r.created_at),
  lastModifiedAt: num(r.last_modified_at),
  successCount: num(r.success_count),
  failureCount: num(r.failure_count),
  total: num(r.total),
  message: strOrNull(r.message),
});

/**
 * Open the flows store, running its migrations (context `provisioning-flows`).
 * @example const store = await openFlowsStore(db);
 */
export async function openFlowsStore(db: Database): Promise<FlowsStore> {
  await migrate(db, 'provisioning-flows', PROVISIONING_FLOW_MIGRATIONS);
  // The journal row of each registration, written and deleted by group commit (group-commit.ts): the
  // registrations applying at once (bulk lines, concurrent API calls) share one statement, and each caller
  // still goes on only once its own row is stored (insert) or gone (delete), as the saga requires.
  const insertJournalRow = groupCommit<{ j: JournalRow; leaseUntil: number }>(async (rows) => {
    await db.run(
      `INSERT INTO provisioning_journal (attempt_id, flow, created_at, lease_until, undo) VALUES ${valuesList(rows.length, 5)}`,
      rows.flatMap(({ j, leaseUntil }) => [j.attemptId, j.flow, j.createdAt, leaseUntil, j.undo]),
    );
  }, ROWS_PER_STATEMENT);
  const deleteJournalRow = groupCommit<string>(async (ids) => {
    await db.run(`DELETE FROM provisioning_journal WHERE attempt_id IN ${valuesList(1, ids.length)}`, ids);
  }, ROWS_PER_STATEMENT);
  const store: FlowsStore = {
    async insertToken(t) {
      await db.run(
        'INSERT INTO provisioning_tokens (token_hash, certificate_id, claim_certificate_id, client_id, created_at, ' +
          'expires_at, claimed_until, used_at) VALUES ($1, $2, $3, $4, $5, $6, 0, NULL)',
        [t.tokenHash, t.certificateId, t.claimCertificateId, t.clientId, t.createdAt, t.expiresAt],
      );
    },
    async claimToken(hash, now, claimUntil) {
      const n = await db.run(
        'UPDATE provisioning_tokens SET claimed_until = $3 WHERE token_hash = $1 AND used_at IS NULL ' +
          'AND expires_at > $2 AND claimed_until <= $2',
        [hash, now, claimUntil],
      );
      const rows = await db.query<Row>('SELECT * FROM provisioning_tokens WHERE token_hash = $1', [hash]);
      const r = rows[0];
      if (n > 0 && r) return { ok: true, row: tokenFromRow(r) };
      if (!r) return { ok: false, reason: 'unknown' };
      if (r.used_at !== null && r.used_at !== undefined) return { ok: false, reason: 'used' };
      if (num(r.expires_at) <= now) return { ok: false, reason: 'expired' };
      return { ok: false, reason: 'busy' };
    },
    async releaseToken(hash) {
      await db.run(
        'UPDATE provisioning_tokens SET claimed_until = 0 WHERE token_hash = $1 AND used_at IS NULL',
        [hash],
      );
    },
    async spendToken(hash, now) {
      await db.run('UPDATE provisioning_tokens SET used_at = $2 WHERE token_hash = $1', [hash, now]);
    },
    async expiredTokens(now, limit) {
      const rows = await db.query<Row>(
        'SELECT * FROM provisioning_tokens WHERE used_at IS NULL AND expires_at <= $1 AND claimed_until <= $1 ' +
          'ORDER BY expires_at LIMIT $2',
        [now, limit],
      );
      return rows.map(tokenFromRow);
    },
    async deleteToken(hash) {
      await db.run('DELETE FROM provisioning_tokens WHERE token_hash = $1', [hash]);
    },
    async purgeSpentTokens(before) {
      return db.run('DELETE FROM provisioning_tokens WHERE used_at IS NOT NULL AND used_at < $1', [before]);
    },

    async insertClaim(c) {
      await db.run(
        'INSERT INTO provisioning_claims (certificate_id, template_name, expires_at) VALUES ($1, $2, $3)',
        [c.certificateId, c.templateName, c.expiresAt],
      );
    },
    async expiredClaims(now, limit) {
      const rows = await db.query<{
        certificate_id: string;
        template_name: string;
        expires_at: number | string;
      }>('SELECT * FROM provisioning_claims WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2', [
        now,
        limit,
      ]);
      return rows.map((r) => ({
        certificateId: r.certificate_id,
        templateName: r.template_name,
        expiresAt: Number(r.expires_at),
      }));
    },
    async deleteClaim(certificateId) {
      await db.run('DELETE FROM provisioning_claims WHERE certificate_id = $1', [certificateId]);
    },

    insertJournal(j, leaseUntil) {
      return insertJournalRow({ j, leaseUntil });
    },
    deleteJournal(id) {
      return deleteJournalRow(id);
    },
    async journalIds() {
      const rows = await db.query<{ attempt_id: string; flow: string }>(
        'SELECT attempt_id, flow FROM provisioning_journal',
      );
      return rows.map((r) => ({ attemptId: r.attempt_id, flow: r.flow }));
    },
    async takeLapsedJournal(now, leaseUntil, limit) {
      const rows = await db.query<Row>(
        'SELECT * FROM provisioning_journal WHERE lease_until <= $1 ORDER BY created_at LIMIT $2',
        [now, limit],
      );
      const taken: JournalRow[] = [];
      for (const r of rows) {
        // Conditional on the lease we read, so two processes never both take one entry.
        const n = await db.run(
          'UPDATE provisioning_journal SET lease_until = $3 WHERE attempt_id = $1 AND lease_until = $2',
          [r.attempt_id, r.lease_until, leaseUntil],
        );
        if (n > 0)
          taken.push({
            attemptId: String(r.attempt_id),
            flow: String(r.flow),
            createdAt: num(r.created_at),
            undo: String(r.undo),
          });
      }
      return taken;
    },

    async insertTraces(rows) {
      if (rows.length === 0) return;
      // One multi-row statement per chunk (PostgreSQL: one round trip instead of one per trace).
      const chunks: Statement[] = [];
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
        chunks.push({
          sql:
            'INSERT INTO provisioning_traces (attempt_id, started_at, flow, template_name, result, reason, thing_name, ' +
            `certificate_id, body) VALUES ${valuesList(chunk.length, 9)} ON CONFLICT (attempt_id) DO NOTHING`,
          params: chunk.flatMap((t) => [
            t.attemptId,
            t.startedAt,
            t.flow,
            t.templateName,
            t.result,
            t.reason,
            t.thingName,
            t.certificateId,
            t.body,
          ]),
        });
      }
      await db.batch(chunks);
    },
    async getTrace(id) {
      const rows = await db.query<Row>('SELECT * FROM provisioning_traces WHERE attempt_id = $1', [id]);
      return rows[0] ? traceFromRow(rows[0]) : undefined;
    },
    async listTraces(f) {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, ...values: unknown[]) => {
        params.push(...values);
        where.push(sql);
      };
      if (f.before)
        add(
          `(started_at < $${params.length + 1} OR (started_at = $${params.length + 1} AND attempt_id < $${params.length + 2}))`,
          f.before.startedAt,
          f.before.attemptId,
        );
      if (f.templateName !== undefined) add(`template_name = $${params.length + 1}`, f.templateName);
      if (f.result !== undefined) add(`result = $${params.length + 1}`, f.result);
      if (f.thingName !== undefined) add(`thing_name = $${params.length + 1}`, f.thingName);
      if (f.certificateId !== undefined) add(`certificate_id = $${params.length + 1}`, f.certificateId);
      params.push(f.limit);
      const rows = await db.query<Row>(
        `SELECT * FROM provisioning_traces${where.length ? ' WHERE ' + where.join(' AND ') : ''} ` +
          `ORDER BY started_at DESC, attempt_id DESC LIMIT $${params.length}`,
        params,
      );
      return rows.map(traceFromRow);
    },
    async trimTraces(keep) {
      const rows = await db.query<Row>(
        'SELECT started_at, attempt_id FROM provisioning_traces ORDER BY started_at DESC, attempt_id DESC ' +
          'LIMIT 1 OFFSET $1',
        [keep],
      );
      const edge = rows[0];
      if (!edge) return 0;
      return db.run(
        'DELETE FROM provisioning_traces WHERE started_at < $1 OR (started_at = $1 AND attempt_id <= $2)',
        [edge.started_at, edge.attempt_id],
      );
    },

    async insertTask(t, leaseUntil) {
      await db.run(
        'INSERT INTO provisioning_tasks (task_id, body, status, created_at, last_modified_at, success_count, ' +
          'failure_count, total, message, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
        [
          t.taskId,
          t.body,
          t.status,
          t.createdAt,
          t.lastModifiedAt,
          t.successCount,
          t.failureCount,
          t.total,
          t.message,
          leaseUntil,
        ],
      );
    },
    async getTask(id) {
      const rows = await db.query<Row>('SELECT * FROM provisioning_tasks WHERE task_id = $1', [id]);
      return rows[0] ? taskFromRow(rows[0]) : undefined;
    },
    async listTasks(o) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (o.after !== undefined) {
        params.push(o.after);
        where.push(`task_id > $${params.length}`);
      }
      if (o.status !== undefined) {
        params.push(o.status);
        where.push(`status = $${params.length}`);
      }
      if (o.lapsedAt !== undefined) {
        params.push(o.lapsedAt);
        where.push(`status IN ('InProgress', 'Cancelling') AND lease_until <= $${params.length}`);
      }
      params.push(o.limit);
      const rows = await db.query<Row>(
        `SELECT * FROM provisioning_tasks${where.length ? ' WHERE ' + where.join(' AND ') : ''} ORDER BY task_id LIMIT $${params.length}`,
        params,
      );
      return rows.map(taskFromRow);
    },
    async updateTask(id, c) {
      const sets: string[] = [];
      const params: unknown[] = [id];
      const set = (column: string, value: unknown) => {
        params.push(value);
        sets.push(`${column} = $${params.length}`);
      };
      if (c.status !== undefined) set('status', c.status);
      if (c.successCount !== undefined) set('success_count', c.successCount);
      if (c.failureCount !== undefined) set('failure_count', c.failureCount);
      if (c.total !== undefined) set('total', c.total);
      if (c.message !== undefined) set('message', c.message);
      if (c.leaseUntil !== undefined) set('lease_until', c.leaseUntil);
      set('last_modified_at', c.lastModifiedAt);
      await db.run(`UPDATE provisioning_tasks SET ${sets.join(', ')} WHERE task_id = $1`, params);
    },
    async takeLapsedTasks(now, leaseUntil, taskId) {
      const rows = await db.query<Row>(
        "SELECT * FROM provisioning_tasks WHERE task_id = $1 AND status IN ('InProgress', 'Cancelling') AND lease_until <= $2",
        [taskId, now],
      );
      const taken: TaskRow[] = [];
      for (const r of rows) {
        // Conditional on the lease we read, so two processes never both take one task.
        const n = await db.run(
          'UPDATE provisioning_tasks SET lease_until = $3 WHERE task_id = $1 AND lease_until = $2',
          [r.task_id, r.lease_until, leaseUntil],
        );
        if (n > 0) taken.push(taskFromRow(r));
      }
      return taken;
    },
    async insertTaskLines(id, lines) {
      if (lines.length === 0) return;
      const chunks: Statement[] = [];
      for (let i = 0; i < lines.length; i += ROWS_PER_STATEMENT) {
        const chunk = lines.slice(i, i + ROWS_PER_STATEMENT);
        chunks.push({
          sql:
            `INSERT INTO provisioning_task_lines (task_id, line, ok, body) VALUES ${valuesList(chunk.length, 4)} ` +
            'ON CONFLICT (task_id, line) DO NOTHING',
          params: chunk.flatMap((l) => [id, l.line, l.ok ? 1 : 0, l.body]),
        });
      }
      await db.batch(chunks);
    },
    async deleteTaskLine(id, line) {
      await db.run('DELETE FROM provisioning_task_lines WHERE task_id = $1 AND line = $2', [id, line]);
    },
    async taskLineCounts(id) {
      const rows = await db.query<{ ok: unknown; n: unknown }>(
        'SELECT ok, COUNT(*) AS n FROM provisioning_task_lines WHERE task_id = $1 GROUP BY ok',
        [id],
      );
      let ok = 0;
      let failed = 0;
      for (const r of rows)
        if (num(r.ok) === 1) ok += num(r.n);
        else failed += num(r.n);
      return { ok, failed };
    },
    async doneTaskLines(id) {
      const rows = await db.query<{ line: unknown }>(
        'SELECT line FROM provisioning_task_lines WHERE task_id = $1',
        [id],
      );
      return new Set(rows.map((r) => num(r.line)));
    },
    async taskLines(id, o) {
      const rows = await db.query<Row>(
        'SELECT line, body FROM provisioning_task_lines WHERE task_id = $1 AND ok = $2 AND line > $3 ' +
          'ORDER BY line LIMIT $4',
        [id, o.ok ? 1 : 0, o.after, o.limit],
      );
      return rows.map((r) => ({ line: num(r.line), body: String(r.body) }));
    },
  };
  return store;
}
