/**
 * The jobs store: jobs, their rollout targets, job executions and job templates, on the platform database
 * (SQLite or PostgreSQL: one portable implementation over `Database`, one contract suite run on both,
 * store.test.ts).
 *
 * Concurrency contract (optimistic, so several processes sharing PostgreSQL never lose or duplicate work):
 * - `putJob` and `putExecution` write only when the stored `version` / `versionNumber` still equals the
 *   expected one, and return false otherwise; the caller re-reads and decides again.
 * - `launch` claims up to `limit` pending targets in one statement (a conditional UPDATE of their state)
 *   and creates their executions in the same transaction, only while the job is IN_PROGRESS: two processes
 *   launching at once create one execution per target between them, and a cancel committed before the
 *   claim stops it (one committed after it sees the batch). A batch of N targets costs a few statements.
 * - A job's target ARNs are rows of their own (`job_target_arns`), written with the job (insertJob,
 *   associate) and read only where the ARNs are shown or matched; the job row stays small.
 * - `retry` supersedes an attempt only if it is unchanged since it was read.
 * - Only the latest attempt of a job on a thing (`latest`) is listed, counted and timed; older attempts
 *   stay readable by execution number.
 */
import type { Database } from '../store/index.js';
import { migrate } from '../store/index.js';
import { newExecution } from './executions.js';
import { JOBS_MIGRATIONS } from './migrations.js';
import { parseTarget } from './targets.js';
import type {
  ExecutionRecord,
  ExecutionStatus,
  JobRecord,
  JobStatus,
  TargetSelection,
  TemplateRecord,
} from './types.js';

export interface JobsStore {
  /**
   * Insert a job, the target ARNs it was given (in order) and the things they reached (pending targets, in
   * order). False when the job id exists.
   */
  insertJob(job: JobRecord, targetArns: readonly string[], things: readonly string[]): Promise<boolean>;
  getJob(jobId: string): Promise<JobRecord | null>;
  /** The target ARNs a job was given (CreateJob, then AssociateTargetsWithJob), in order. */
  targetArns(jobId: string): Promise<string[]>;
  /**
   * AssociateTargetsWithJob: write `job` (conditional on `expectedVersion`), append `targetArns` and add
   * `things` as pending targets, in one transaction. False when the job changed since it was read.
   */
  associate(
    job: JobRecord,
    expectedVersion: number,
    targetArns: readonly string[],
    things: readonly string[],
  ): Promise<boolean>;
  /** Ids of the jobs whose target ARNs name the thing or one of the thing groups. */
  jobsReaching(thingName: string, groups: readonly string[]): Promise<string[]>;
  /** Jobs in job id order after `after` (exclusive), at most `limit`; `thingGroup`: jobs targeting it. */
  listJobs(filter: {
    status?: JobStatus;
    targetSelection?: TargetSelection;
    thingGroup?: string;
    after?: string;
    limit: number;
  }): Promise<JobRecord[]>;
  /** Jobs the rollout runner looks after: IN_PROGRESS, SCHEDULED and DELETION_IN_PROGRESS. */
  activeJobs(): Promise<JobRecord[]>;
  /** Conditional write (see the contract). */
  putJob(job: JobRecord, expectedVersion: number): Promise<boolean>;
  /** Remove the job, its targets and every execution. */
  deleteJob(jobId: string): Promise<void>;

  /** Add targets not already known (continuous jobs: a thing joined a target group). Returns how many. */
  addTargets(jobId: string, things: readonly string[]): Promise<number>;
  /** Targets not launched yet, in the order they were added, at most `limit`. */
  pendingTargets(jobId: string, limit: number): Promise<string[]>;
  /** Forget every target not launched yet (cancel, abort, end of rollout). Returns how many. */
  dropPendingTargets(jobId: string): Promise<number>;
  /** Forget one target, launched or not (the thing left a continuous job's groups; it may rejoin). */
  dropTarget(jobId: string, thingName: string): Promise<boolean>;
  /**
   * Launch up to `limit` pending targets, oldest first: each claimed target gets a new QUEUED execution
   * queued at `now` (execution number 1, or the next one for a thing that left and rejoined). Returns those
   * created, in target order.
   */
  launch(jobId: string, limit: number, now: number): Promise<ExecutionRecord[]>;

  /** One attempt, or the latest when `executionNumber` is omitted. */
  getExecution(jobId: string, thingName: string, executionNumber?: number): Promise<ExecutionRecord | null>;
  /**
   * Conditional write of an existing attempt (see the contract). With `whileJobInProgress`, also only while
   * its job is IN_PROGRESS (a device starting a QUEUED execution: none starts once a cancel is written).
   */
  putExecution(
    execution: ExecutionRecord,
    expectedVersion: number,
    options?: { whileJobInProgress?: boolean },
  ): Promise<boolean>;
  /** Make `next` the latest attempt in place of `previous` (unchanged since read at `expectedVersion`). */
  retry(previous: ExecutionRecord, expectedVersion: number, next: ExecutionRecord): Promise<boolean>;
  deleteExecution(jobId: string, thingName: string, executionNumber: number): Promise<boolean>;
  /** Latest attempts of a job in thing name order after `after`, at most `limit`. */
  listForJob(
    jobId: string,
    filter: { status?: ExecutionStatus; after?: string; limit: number },
  ): Promise<ExecutionRecord[]>;
  /** Latest attempts on a thing in job id order after `after`, at most `limit`. */
  listForThing(
    thingName: string,
    filter: { status?: ExecutionStatus; jobId?: string; after?: string; limit: number },
  ): Promise<ExecutionRecord[]>;
  /** The thing's QUEUED and IN_PROGRESS latest attempts, oldest queued first. */
  pendingForThing(thingName: string): Promise<ExecutionRecord[]>;
  /** pendingForThing for many things in one query (things with none are absent from the map). */
  pendingForThings(thingNames: readonly string[]): Promise<Map<string, ExecutionRecord[]>>;
  /** A job's latest attempts in the given states, at most `limit`. */
  executionsInState(
    jobId: string,
    statuses: readonly ExecutionStatus[],
    limit: number,
  ): Promise<ExecutionRecord[]>;
  /** IN_PROGRESS latest attempts whose earliest deadline is at or before `now`, at most `limit`. */
  due(now: number, limit: number): Promise<ExecutionRecord[]>;
  /** Latest attempts of a job by status. */
  counts(jobId: string): Promise<Partial<Record<ExecutionStatus, number>>>;
  /** Targets of a job not launched yet. */
  pendingCount(jobId: string): Promise<number>;

  /** False when the template id exists. */
  insertTemplate(template: TemplateRecord): Promise<boolean>;
  getTemplate(jobTemplateId: string): Promise<TemplateRecord | null>;
  listTemplates(filter: { after?: string; limit: number }): Promise<TemplateRecord[]>;
  deleteTemplate(jobTemplateId: string): Promise<boolean>;
}

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

interface JobBody {
  targetCount: number;
  firstTarget: string;
  document: string;
  documentSource: string | null;
  description: string | null;
  config: JobRecord['config'];
  forceCanceled: boolean;
  reasonCode: string | null;
  comment: string | null;
}

function jobFromRow(r: Row): JobRecord {
  // Rows written before migration 2 still carry `targets` in the body; the ARNs are in job_target_arns.
  const { targets, ...body } = JSON.parse(String(r.body)) as JobBody & { targets?: string[] };
  return {
    jobId: String(r.job_id),
    status: r.status as JobStatus,
    targetSelection: r.target_selection as TargetSelection,
    ...body,
    ...(targets ? { targetCount: targets.length, firstTarget: targets[0] ?? '' } : {}),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    completedAt: numOrNull(r.completed_at),
    version: num(r.version),
    rollout: JSON.parse(String(r.rollout)) as JobRecord['rollout'],
  };
}

function jobBody(j: JobRecord): string {
  const body: JobBody = {
    targetCount: j.targetCount,
    firstTarget: j.firstTarget,
    document: j.document,
    documentSource: j.documentSource,
    description: j.description,
    config: j.config,
    forceCanceled: j.forceCanceled,
    reasonCode: j.reasonCode,
    comment: j.comment,
  };
  return JSON.stringify(body);
}

function execFromRow(r: Row): ExecutionRecord {
  return {
    jobId: String(r.job_id),
    thingName: String(r.thing_name),
    executionNumber: num(r.execution_number),
    status: r.status as ExecutionStatus,
    statusDetails: JSON.parse(String(r.status_details)) as Record<string, string>,
    versionNumber: num(r.version_number),
    queuedAt: num(r.queued_at),
    startedAt: numOrNull(r.started_at),
    lastUpdatedAt: num(r.last_updated_at),
    stepDeadline: numOrNull(r.step_deadline),
    progressDeadline: numOrNull(r.progress_deadline),
    watchdogDeadline: numOrNull(r.watchdog_deadline),
    retryAttempt: num(r.retry_attempt),
    forceCanceled: num(r.force_canceled) === 1,
  };
}

/** The earliest deadline of an IN_PROGRESS attempt (null: nothing to time). */
export function dueAt(e: ExecutionRecord): number | null {
  if (e.status !== 'IN_PROGRESS') return null;
  const ds = [e.stepDeadline, e.progressDeadline, e.watchdogDeadline].filter((d): d is number => d !== null);
  return ds.length ? Math.min(...ds) : null;
}

const EXEC_COLUMNS =
  'job_id, thing_name, execution_number, status, status_details, version_number, queued_at, started_at, ' +
  'last_updated_at, step_deadline, progress_deadline, watchdog_deadline, due_at, retry_attempt, ' +
  'force_canceled, latest';
const EXEC_VALUES = '$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16';

const execParams = (e: ExecutionRecord, latest: boolean): unknown[] => [
  e.jobId,
  e.thingName,
  e.executionNumber,
  e.status,
  JSON.stringify(e.statusDetails),
  e.versionNumber,
  e.queuedAt,
  e.startedAt,
  e.lastUpdatedAt,
  e.stepDeadline,
  e.progressDeadline,
  e.watchdogDeadline,
  dueAt(e),
  e.retryAttempt,
  e.forceCanceled ? 1 : 0,
  latest ? 1 : 0,
];

const templateBody = (t: TemplateRecord) =>
  JSON.stringify({
    description: t.description,
    document: t.document,
    documentSource: t.documentSource,
    config: t.config,
  });

function templateFromRow(r: Row): TemplateRecord {
  const body = JSON.parse(String(r.body)) as Omit<TemplateRecord, 'jobTemplateId' | 'createdAt'>;
  return { jobTemplateId: String(r.job_template_id), ...body, createdAt: num(r.created_at) };
}

/**
 * The statements that take a list of values as one parameter, so each has one SQL text whatever the list's
 * length (one prepared statement, no text per batch size): a JSON array through `json_each` on SQLite, an
 * array through `unnest` / `= ANY` on PostgreSQL.
 */
function listStatements(kind: Database['kind']) {
  const sqlite = kind === 'sqlite';
  const json = (v: unknown) => JSON.stringify(v);
  // A new QUEUED attempt (executions.ts newExecution) after job_id, thing_name, execution_number; $2: now.
  const t = sqlite ? '' : '::bigint';
  const EXEC_NEW = `'QUEUED', '{}', 1, $2${t}, NULL${t}, $2${t}, NULL${t}, NULL${t}, NULL${t}, NULL${t}, 0, 0, 1`;
  return {
    /**
     * $1 job id, $2 limit: flip up to $2 pending targets, oldest first, to launched; returns thing_name, seq.
     * The targets are matched by primary key (job_id, thing_name); PostgreSQL skips rows another claimer holds.
     */
    claim: sqlite
      ? 'UPDATE job_targets SET state = 1 WHERE job_id = $1 AND state = 0 AND thing_name IN ' +
        '(SELECT thing_name FROM job_targets WHERE job_id = $1 AND state = 0 ORDER BY seq LIMIT $2) ' +
        'RETURNING thing_name, seq'
      : // The rows are locked (and re-checked: state = 0) by the CTE, then updated through the primary key.
        // As `... AND state = 0 AND thing_name IN (subquery)` the planner of a table without statistics
        // joined every pending row with every claimed one: 2.5 s per 500 of 10,000 targets.
        'WITH c AS (SELECT thing_name FROM job_targets WHERE job_id = $1 AND state = 0 ORDER BY seq LIMIT $2 ' +
        'FOR UPDATE SKIP LOCKED) UPDATE job_targets t SET state = 1 FROM c ' +
        'WHERE t.job_id = $1 AND t.thing_name = c.thing_name RETURNING t.thing_name, t.seq',
    jobStatus: `SELECT status FROM jobs WHERE job_id = $1${sqlite ? '' : ' FOR SHARE'}`,
    /** `column IN (the list at $n)`. */
    inList: (column: string, n: number) =>
      sqlite ? `${column} IN (SELECT value FROM json_each($${n}))` : `${column} = ANY($${n}::text[])`,
    list: (values: readonly string[]): unknown => (sqlite ? json(values) : [...values]),
    /** $1 job id, $2 first seq, $3 thing names: pending targets, skipping things already targeted. */
    insertTargets: sqlite
      ? 'INSERT INTO job_targets (job_id, thing_name, seq, state) SELECT $1, value, $2 + key, 0 ' +
        'FROM json_each($3) WHERE true ON CONFLICT (job_id, thing_name) DO NOTHING'
      : 'INSERT INTO job_targets (job_id, thing_name, seq, state) ' +
        'SELECT $1, t.name, $2::bigint + t.n - 1, 0 FROM unnest($3::text[]) WITH ORDINALITY AS t (name, n) ' +
        'ON CONFLICT (job_id, thing_name) DO NOTHING',
    /** $1 job id, $2 first position, then (sqlite) $3 [[arn, kind, name], ...] / (pg) $3 arns, $4 kinds, $5 names. */
    insertArns: sqlite
      ? 'INSERT INTO job_target_arns (job_id, position, arn, kind, name) ' +
        "SELECT $1, $2 + key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') " +
        'FROM json_each($3)'
      : 'INSERT INTO job_target_arns (job_id, position, arn, kind, name) ' +
        'SELECT $1, $2::int + t.n - 1, t.arn, t.kind, t.name ' +
        'FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t (arn, kind, name, n)',
    arnParams: (arns: readonly string[]): unknown[] => {
      const rows = arns.map((a) => {
        const t = parseTarget(a);
        return [t.arn, t.kind, t.name];
      });
      return sqlite ? [json(rows)] : [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
    },
    /** $1 job id, $2 queued at, then (sqlite) $3 [[thing, executionNumber], ...] / (pg) $3 things, $4 numbers. */
    insertQueued: sqlite
      ? `INSERT INTO job_executions (${EXEC_COLUMNS}) ` +
        `SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ${EXEC_NEW} FROM json_each($3)`
      : `INSERT INTO job_executions (${EXEC_COLUMNS}) ` +
        `SELECT $1, t.thing, t.n, ${EXEC_NEW} FROM unnest($3::text[], $4::int[]) AS t (thing, n)`,
    queuedParams: (rows: ReadonlyArray<readonly [string, number]>): unknown[] =>
      sqlite ? [json(rows)] : [rows.map((r) => r[0]), rows.map((r) => r[1])],
  };
}

/**
 * The jobs store on the platform database; runs the jobs migrations first.
 * @example const store = await createJobsStore(db);
 */
export async function createJobsStore(db: Database): Promise<JobsStore> {
  await migrate(db, 'jobs', JOBS_MIGRATIONS);
  const sql = listStatements(db.kind);
  type Tx = Pick<Database, 'query' | 'run'>;

  async function nextSeq(tx: Tx, jobId: string): Promise<number> {
    const [r] = await tx.query<Row>('SELECT MAX(seq) AS m FROM job_targets WHERE job_id = $1', [jobId]);
    return r?.m === null || r?.m === undefined ? 0 : num(r.m) + 1;
  }

  async function insertTargets(tx: Tx, jobId: string, things: readonly string[]): Promise<number> {
    if (things.length === 0) return 0;
    return tx.run(sql.insertTargets, [jobId, await nextSeq(tx, jobId), sql.list(things)]);
  }

  async function insertArns(tx: Tx, jobId: string, from: number, arns: readonly string[]): Promise<void> {
    if (arns.length) await tx.run(sql.insertArns, [jobId, from, ...sql.arnParams(arns)]);
  }

  const writeJob = (tx: Tx, job: JobRecord, expectedVersion: number) =>
    tx.run(
      'UPDATE jobs SET status = $1, target_selection = $2, body = $3, rollout = $4, updated_at = $5, ' +
        'completed_at = $6, version = $7 WHERE job_id = $8 AND version = $9',
      [
        job.status,
        job.targetSelection,
        jobBody(job),
        JSON.stringify(job.rollout),
        job.updatedAt,
        job.completedAt,
        job.version,
        job.jobId,
        expectedVersion,
      ],
    );

  return {
    async insertJob(job, targetArns, things) {
      return db.transaction(async (tx) => {
        const existing = await tx.query('SELECT 1 FROM jobs WHERE job_id = $1', [job.jobId]);
        if (existing.length) return false;
        await tx.run(
          'INSERT INTO jobs (job_id, status, target_selection, body, rollout, created_at, updated_at, ' +
            'completed_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          [
            job.jobId,
            job.status,
            job.targetSelection,
            jobBody(job),
            JSON.stringify(job.rollout),
            job.createdAt,
            job.updatedAt,
            job.completedAt,
            job.version,
          ],
        );
        await insertArns(tx, job.jobId, 0, targetArns);
        await insertTargets(tx, job.jobId, things);
        return true;
      });
    },

    async getJob(jobId) {
      const [r] = await db.query<Row>('SELECT * FROM jobs WHERE job_id = $1', [jobId]);
      return r ? jobFromRow(r) : null;
    },

    async targetArns(jobId) {
      const rows = await db.query<Row>(
        'SELECT arn FROM job_target_arns WHERE job_id = $1 ORDER BY position',
        [jobId],
      );
      return rows.map((r) => String(r.arn));
    },

    async associate(job, expectedVersion, targetArns, things) {
      return db.transaction(async (tx) => {
        if ((await writeJob(tx, job, expectedVersion)) !== 1) return false;
        const [r] = await tx.query<Row>('SELECT MAX(position) AS m FROM job_target_arns WHERE job_id = $1', [
          job.jobId,
        ]);
        await insertArns(tx, job.jobId, r?.m === null || r?.m === undefined ? 0 : num(r.m) + 1, targetArns);
        await insertTargets(tx, job.jobId, things);
        return true;
      });
    },

    async jobsReaching(thingName, groups) {
      const rows = await db.query<Row>(
        "SELECT DISTINCT job_id FROM job_target_arns WHERE (kind = 'thing' AND name = $1) OR " +
          `(kind = 'thinggroup' AND ${sql.inList('name', 2)})`,
        [thingName, sql.list(groups)],
      );
      return rows.map((r) => String(r.job_id));
    },

    async listJobs(f) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (f.status) where.push(`status = $${params.push(f.status)}`);
      if (f.targetSelection) where.push(`target_selection = $${params.push(f.targetSelection)}`);
      if (f.thingGroup !== undefined)
        where.push(
          'EXISTS (SELECT 1 FROM job_target_arns a WHERE a.job_id = jobs.job_id AND ' +
            `a.kind = 'thinggroup' AND a.name = $${params.push(f.thingGroup)})`,
        );
      if (f.after !== undefined) where.push(`job_id > $${params.push(f.after)}`);
      const text =
        'SELECT * FROM jobs' +
        (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
        ` ORDER BY job_id LIMIT $${params.push(f.limit)}`;
      return (await db.query<Row>(text, params)).map(jobFromRow);
    },

    async activeJobs() {
      const rows = await db.query<Row>(
        "SELECT * FROM jobs WHERE status IN ('IN_PROGRESS', 'SCHEDULED', 'DELETION_IN_PROGRESS') ORDER BY created_at",
      );
      return rows.map(jobFromRow);
    },

    async putJob(job, expectedVersion) {
      return (await writeJob(db, job, expectedVersion)) === 1;
    },

    async deleteJob(jobId) {
      await db.batch([
        { sql: 'DELETE FROM job_executions WHERE job_id = $1', params: [jobId] },
        { sql: 'DELETE FROM job_targets WHERE job_id = $1', params: [jobId] },
        { sql: 'DELETE FROM job_target_arns WHERE job_id = $1', params: [jobId] },
        { sql: 'DELETE FROM jobs WHERE job_id = $1', params: [jobId] },
      ]);
    },

    async addTargets(jobId, things) {
      if (things.length === 0) return 0;
      return db.transaction((tx) => insertTargets(tx, jobId, things));
    },

    async pendingTargets(jobId, limit) {
      const rows = await db.query<Row>(
        'SELECT thing_name FROM job_targets WHERE job_id = $1 AND state = 0 ORDER BY seq LIMIT $2',
        [jobId, limit],
      );
      return rows.map((r) => String(r.thing_name));
    },

    dropPendingTargets: (jobId) => db.run('DELETE FROM job_targets WHERE job_id = $1 AND state = 0', [jobId]),

    async dropTarget(jobId, thingName) {
      const n = await db.run('DELETE FROM job_targets WHERE job_id = $1 AND thing_name = $2', [
        jobId,
        thingName,
      ]);
      return n === 1;
    },

    async launch(jobId, limit, now) {
      if (limit <= 0) return [];
      return db.transaction(async (tx) => {
        // The claim: a target is launched by whoever flips its state; a concurrent claimer re-checks
        // `state = 0` on the rows it waited for (PostgreSQL) or runs after this transaction (SQLite).
        // Only while the job is IN_PROGRESS. On PostgreSQL the row is held FOR SHARE until commit, so a
        // cancel (an UPDATE of the row) waits for this batch and then cancels it with the rest; on SQLite the
        // transactions are serial. Without it a batch claimed during a cancel stayed QUEUED.
        const [job] = await tx.query<Row>(sql.jobStatus, [jobId]);
        if (job?.status !== 'IN_PROGRESS') return [];
        const claimed = await tx.query<Row>(sql.claim, [jobId, limit]);
        if (claimed.length === 0) return [];
        const things = claimed
          .map((r) => ({ thing: String(r.thing_name), seq: num(r.seq) }))
          .sort((a, b) => a.seq - b.seq)
          .map((r) => r.thing);
        // Things that left a continuous job's groups and rejoined have older attempts: take the next number.
        const prior = new Map<string, number>();
        for (const r of await tx.query<Row>(
          'SELECT thing_name, MAX(execution_number) AS m FROM job_executions WHERE job_id = $1 AND ' +
            `${sql.inList('thing_name', 2)} GROUP BY thing_name`,
          [jobId, sql.list(things)],
        ))
          prior.set(String(r.thing_name), num(r.m));
        if (prior.size)
          await tx.run(
            `UPDATE job_executions SET latest = 0 WHERE job_id = $1 AND latest = 1 AND ${sql.inList('thing_name', 2)}`,
            [jobId, sql.list([...prior.keys()])],
          );
        const rows = things.map((t) => [t, (prior.get(t) ?? 0) + 1] as const);
        await tx.run(sql.insertQueued, [jobId, now, ...sql.queuedParams(rows)]);
        return rows.map(([t, n]) => newExecution(jobId, t, now, { executionNumber: n, retryAttempt: 0 }));
      });
    },

    async getExecution(jobId, thingName, executionNumber) {
      const rows =
        executionNumber === undefined
          ? await db.query<Row>(
              'SELECT * FROM job_executions WHERE job_id = $1 AND thing_name = $2 AND latest = 1',
              [jobId, thingName],
            )
          : await db.query<Row>(
              'SELECT * FROM job_executions WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3',
              [jobId, thingName, executionNumber],
            );
      return rows[0] ? execFromRow(rows[0]) : null;
    },

    async putExecution(e, expectedVersion, options = {}) {
      const n = await db.run(
        'UPDATE job_executions SET status = $1, status_details = $2, version_number = $3, started_at = $4, ' +
          'last_updated_at = $5, step_deadline = $6, progress_deadline = $7, watchdog_deadline = $8, ' +
          'due_at = $9, retry_attempt = $10, force_canceled = $11 ' +
          'WHERE job_id = $12 AND thing_name = $13 AND execution_number = $14 AND version_number = $15' +
          (options.whileJobInProgress
            ? " AND EXISTS (SELECT 1 FROM jobs WHERE jobs.job_id = $12 AND jobs.status = 'IN_PROGRESS')"
            : ''),
        [
          e.status,
          JSON.stringify(e.statusDetails),
          e.versionNumber,
          e.startedAt,
          e.lastUpdatedAt,
          e.stepDeadline,
          e.progressDeadline,
          e.watchdogDeadline,
          dueAt(e),
          e.retryAttempt,
          e.forceCanceled ? 1 : 0,
          e.jobId,
          e.thingName,
          e.executionNumber,
          expectedVersion,
        ],
      );
      return n === 1;
    },

    async retry(previous, expectedVersion, next) {
      const [superseded] = await db.batch(
        [
          {
            sql:
              'UPDATE job_executions SET latest = 0 WHERE job_id = $1 AND thing_name = $2 AND ' +
              'execution_number = $3 AND version_number = $4 AND latest = 1',
            params: [previous.jobId, previous.thingName, previous.executionNumber, expectedVersion],
          },
          {
            sql: `INSERT INTO job_executions (${EXEC_COLUMNS}) VALUES (${EXEC_VALUES})`,
            params: execParams(next, true),
          },
        ],
        { guard: true },
      );
      return superseded === 1;
    },

    async deleteExecution(jobId, thingName, executionNumber) {
      const n = await db.run(
        'DELETE FROM job_executions WHERE job_id = $1 AND thing_name = $2 AND execution_number = $3',
        [jobId, thingName, executionNumber],
      );
      return n === 1;
    },

    async listForJob(jobId, f) {
      const params: unknown[] = [jobId];
      let sql = 'SELECT * FROM job_executions WHERE job_id = $1 AND latest = 1';
      if (f.status) sql += ` AND status = $${params.push(f.status)}`;
      if (f.after !== undefined) sql += ` AND thing_name > $${params.push(f.after)}`;
      sql += ` ORDER BY thing_name LIMIT $${params.push(f.limit)}`;
      return (await db.query<Row>(sql, params)).map(execFromRow);
    },

    async listForThing(thingName, f) {
      const params: unknown[] = [thingName];
      let sql = 'SELECT * FROM job_executions WHERE thing_name = $1 AND latest = 1';
      if (f.status) sql += ` AND status = $${params.push(f.status)}`;
      if (f.jobId !== undefined) sql += ` AND job_id = $${params.push(f.jobId)}`;
      if (f.after !== undefined) sql += ` AND job_id > $${params.push(f.after)}`;
      sql += ` ORDER BY job_id LIMIT $${params.push(f.limit)}`;
      return (await db.query<Row>(sql, params)).map(execFromRow);
    },

    async pendingForThing(thingName) {
      const rows = await db.query<Row>(
        'SELECT * FROM job_executions WHERE thing_name = $1 AND latest = 1 AND ' +
          "status IN ('QUEUED', 'IN_PROGRESS') ORDER BY queued_at, job_id",
        [thingName],
      );
      return rows.map(execFromRow);
    },

    async pendingForThings(thingNames) {
      const out = new Map<string, ExecutionRecord[]>();
      if (thingNames.length === 0) return out;
      const rows = await db.query<Row>(
        `SELECT * FROM job_executions WHERE ${sql.inList('thing_name', 1)} AND latest = 1 AND ` +
          "status IN ('QUEUED', 'IN_PROGRESS') ORDER BY thing_name, queued_at, job_id",
        [sql.list(thingNames)],
      );
      for (const r of rows) {
        const e = execFromRow(r);
        const list = out.get(e.thingName);
        if (list) list.push(e);
        else out.set(e.thingName, [e]);
      }
      return out;
    },

    async executionsInState(jobId, statuses, limit) {
      if (statuses.length === 0) return [];
      const params: unknown[] = [jobId];
      const marks = statuses.map((s) => `$${params.push(s)}`).join(', ');
      const rows = await db.query<Row>(
        `SELECT * FROM job_executions WHERE job_id = $1 AND latest = 1 AND status IN (${marks}) ` +
          `ORDER BY thing_name LIMIT $${params.push(limit)}`,
        params,
      );
      return rows.map(execFromRow);
    },

    async due(now, limit) {
      const rows = await db.query<Row>(
        "SELECT * FROM job_executions WHERE status = 'IN_PROGRESS' AND latest = 1 AND due_at <= $1 " +
          'ORDER BY due_at LIMIT $2',
        [now, limit],
      );
      return rows.map(execFromRow);
    },

    async counts(jobId) {
      const rows = await db.query<Row>(
        'SELECT status, COUNT(*) AS n FROM job_executions WHERE job_id = $1 AND latest = 1 GROUP BY status',
        [jobId],
      );
      const out: Partial<Record<ExecutionStatus, number>> = {};
      for (const r of rows) out[r.status as ExecutionStatus] = num(r.n);
      return out;
    },

    async pendingCount(jobId) {
      const [r] = await db.query<Row>(
        'SELECT COUNT(*) AS n FROM job_targets WHERE job_id = $1 AND state = 0',
        [jobId],
      );
      return r ? num(r.n) : 0;
    },

    async insertTemplate(t) {
      const n = await db.run(
        'INSERT INTO job_templates (job_template_id, body, created_at) VALUES ($1, $2, $3) ' +
          'ON CONFLICT (job_template_id) DO NOTHING',
        [t.jobTemplateId, templateBody(t), t.createdAt],
      );
      return n === 1;
    },

    async getTemplate(id) {
      const [r] = await db.query<Row>('SELECT * FROM job_templates WHERE job_template_id = $1', [id]);
      return r ? templateFromRow(r) : null;
    },

    async listTemplates(f) {
      const rows =
        f.after === undefined
          ? await db.query<Row>('SELECT * FROM job_templates ORDER BY job_template_id LIMIT $1', [f.limit])
          : await db.query<Row>(
              'SELECT * FROM job_templates WHERE job_template_id > $1 ORDER BY job_template_id LIMIT $2',
              [f.after, f.limit],
            );
      return rows.map(templateFromRow);
    },

    async deleteTemplate(id) {
      return (await db.run('DELETE FROM job_templates WHERE job_template_id = $1', [id])) === 1;
    },
  };
}
