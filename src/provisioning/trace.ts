import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram, type Logger, type Registry } from '../observability/index.js';
import type { FlowsStore, TraceRow } from './flows-store.js';

/**
 * Provisioning traces: one per attempt (MQTT RegisterThing, the RegisterThing API, JITP, each bulk line,
 * certificate requests over MQTT), with every step taken (template lookup, the hook's request, answer and
 * latency, the template evaluation's steps, each resource applied or undone) and, for a refusal, the exact
 * reason: a stable code (`reason`) and the text the device was sent (`message`).
 *
 * Kept bounded twice: the newest `ringSize` in memory (read first by the API), and the newest `storedMax`
 * in the store, written in batches off the request path. The write queue holds at most `maxPending`
 * traces; beyond it a trace is not stored (it stays in the ring) and is counted in
 * thingstead_provisioning_traces_dropped_total{reason="queue_full"}.
 * Metrics: thingstead_provisioning_attempts_total{flow,result,reason}, thingstead_provisioning_seconds{flow}.
 */

export type ProvisioningFlow = 'mqtt' | 'api' | 'jitp' | 'bulk' | 'certificate';

export interface TraceStep {
  /** What was done: `template`, `hook.request`, `hook.answer`, `evaluate`, `apply.thing`, ... */
  readonly step: string;
  /** Milliseconds since the attempt started. */
  readonly atMs: number;
  readonly ok: boolean;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface ProvisioningTrace {
  readonly attemptId: string;
  readonly flow: ProvisioningFlow;
  readonly templateName?: string | undefined;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly result: 'accepted' | 'rejected';
  /** Stable refusal code (`template_not_found`, `hook_denied`, `hook_timeout`, `token_used`, ...). */
  readonly reason?: string | undefined;
  /** The refusal as the caller was told it. */
  readonly message?: string | undefined;
  readonly thingName?: string | undefined;
  readonly certificateId?: string | undefined;
  readonly clientId?: string | undefined;
  /** Bulk: the task and its line. */
  readonly taskId?: string | undefined;
  readonly line?: number | undefined;
  readonly steps: readonly TraceStep[];
}

/** One attempt being traced. Steps are appended in order; `finish` ends it (once). */
export interface AttemptTrace {
  readonly attemptId: string;
  step(step: string, detail?: Record<string, unknown>, ok?: boolean): void;
  /** Fill in what is learnt along the way (template, thing, certificate). */
  note(
    fields: Partial<Pick<ProvisioningTrace, 'templateName' | 'thingName' | 'certificateId' | 'clientId'>>,
  ): void;
  finish(result: 'accepted' | 'rejected', refusal?: { reason: string; message: string }): ProvisioningTrace;
}

export interface TraceFilter {
  templateName?: string | undefined;
  result?: string | undefined;
  thingName?: string | undefined;
  certificateId?: string | undefined;
  /** Paging: the `nextToken` of the previous page. */
  nextToken?: string | undefined;
  limit?: number | undefined;
}

export interface TraceLog {
  begin(
    flow: ProvisioningFlow,
    fields?: Partial<Pick<ProvisioningTrace, 'templateName' | 'clientId' | 'taskId' | 'line'>>,
  ): AttemptTrace;
  get(attemptId: string): Promise<ProvisioningTrace | undefined>;
  list(filter: TraceFilter): Promise<{ traces: ProvisioningTrace[]; nextToken?: string | undefined }>;
  /** Write what is queued now (tests, shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const MAX_STEPS = 200;

export function createTraceLog(options: {
  store: FlowsStore;
  logger: Logger;
  metrics?: Registry | undefined;
  ringSize: number;
  storedMax: number;
  maxPending?: number;
  flushMs?: number;
  now?: () => number;
}): TraceLog {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  const registers = options.metrics ? [options.metrics] : [];
  const attempts = new Counter({
    name: 'thingstead_provisioning_attempts_total',
    help: 'Provisioning attempts by flow (mqtt, api, jitp, bulk, certificate), result and refusal reason.',
    labelNames: ['flow', 'result', 'reason'] as const,
    registers,
  });
  const seconds = new Histogram({
    name: 'thingstead_provisioning_seconds',
    help: 'Time from the start of a provisioning attempt to its answer, by flow.',
    labelNames: ['flow'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
    registers,
  });
  const dropped = new Counter({
    name: 'thingstead_provisioning_traces_dropped_total',
    help: 'Traces kept in memory only, not stored, by reason (queue_full: the store write queue was full).',
    labelNames: ['reason'] as const,
    registers,
  });
  const ring: ProvisioningTrace[] = [];
  let ringHead = 0;
  let pending: ProvisioningTrace[] = [];
  const maxPending = options.maxPending ?? 20_000;
  let flushing: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let writesSinceTrim = 0;
  const flushMs = options.flushMs ?? 200;

  const remember = (t: ProvisioningTrace) => {
    if (options.ringSize <= 0) return;
    if (ring.length < options.ringSize) ring.push(t);
    else {
      ring[ringHead] = t;
      ringHead = (ringHead + 1) % options.ringSize;
    }
  };

  const toRow = (t: ProvisioningTrace): TraceRow => ({
    attemptId: t.attemptId,
    startedAt: t.startedAt,
    flow: t.flow,
    templateName: t.templateName ?? null,
    result: t.result,
    reason: t.reason ?? null,
    thingName: t.thingName ?? null,
    certificateId: t.certificateId ?? null,
    body: JSON.stringify(t),
  });

  async function writePending(): Promise<void> {
    while (pending.length) {
      const batch = pending.slice(0, 1000);
      pending = pending.slice(batch.length);
      try {
        await store.insertTraces(batch.map(toRow));
        writesSinceTrim += batch.length;
        if (writesSinceTrim >= Math.max(100, Math.floor(options.storedMax / 10))) {
          writesSinceTrim = 0;
          await store.trimTraces(options.storedMax);
        }
      } catch (err) {
        dropped.inc({ reason: 'store_error' }, batch.length);
        logger.warn({ err, traces: batch.length }, 'provisioning traces could not be stored');
      }
    }
  }

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    flushing ??= writePending().finally(() => {
      flushing = null;
    });
    return flushing;
  };

  const schedule = () => {
    if (timer || options.storedMax <= 0) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, flushMs);
    timer.unref();
  };

  const fromRingOrStore = async (id: string) => {
    const hit = ring.find((t) => t.attemptId === id);
    if (hit) return hit;
    const row = await store.getTrace(id);
    return row ? (JSON.parse(row.body) as ProvisioningTrace) : undefined;
  };

  return {
    begin(flow, fields = {}) {
      const startedAt = now();
      const t0 = performance.now();
      const attemptId = randomUUID();
      const steps: TraceStep[] = [];
      let info: Partial<ProvisioningTrace> = { ...fields };
      let done: ProvisioningTrace | null = null;
      return {
        attemptId,
        step(step, detail, ok = true) {
          if (steps.length >= MAX_STEPS) return;
          steps.push({
            step,
            atMs: Math.round((performance.now() - t0) * 1000) / 1000,
            ok,
            ...(detail ? { detail } : {}),
          });
        },
        note(more) {
          info = { ...info, ...more };
        },
        finish(result, refusal) {
          if (done) return done;
          const durationMs = Math.round((performance.now() - t0) * 1000) / 1000;
          done = {
            attemptId,
            flow,
            startedAt,
            durationMs,
            result,
            ...info,
            ...(refusal ? { reason: refusal.reason, message: refusal.message } : {}),
            steps,
          };
          attempts.inc({ flow, result, reason: refusal?.reason ?? '' });
          seconds.observe({ flow }, durationMs / 1000);
          remember(done);
          if (options.storedMax > 0) {
            if (pending.length >= maxPending) dropped.inc({ reason: 'queue_full' });
            else {
              pending.push(done);
              if (pending.length >= 1000) void flush();
              else schedule();
            }
          }
          return done;
        },
      };
    },

    get: fromRingOrStore,

    async list(filter) {
      const limit = Math.min(Math.max(filter.limit ?? 50, 1), 250);
      if (options.storedMax <= 0) {
        // Nothing is stored: the ring alone answers (newest first, no paging).
        const hits = [...ring]
          .sort((a, b) => b.startedAt - a.startedAt)
          .filter(
            (t) =>
              (filter.templateName === undefined || t.templateName === filter.templateName) &&
              (filter.result === undefined || t.result === filter.result) &&
              (filter.thingName === undefined || t.thingName === filter.thingName) &&
              (filter.certificateId === undefined || t.certificateId === filter.certificateId),
          );
        return { traces: hits.slice(0, limit) };
      }
      // The store holds everything the ring does once flushed; flush first so one source answers.
      await flush();
      const before = decodeToken(filter.nextToken);
      const rows = await store.listTraces({
        before,
        templateName: filter.templateName,
        result: filter.result,
        thingName: filter.thingName,
        certificateId: filter.certificateId,
        limit: limit + 1,
      });
      const traces = rows.slice(0, limit).map((r) => JSON.parse(r.body) as ProvisioningTrace);
      const last = rows.length > limit ? rows[limit - 1] : undefined;
      return { traces, nextToken: last ? encodeToken(last.startedAt, last.attemptId) : undefined };
    },

    flush,

    async close() {
      await flush();
    },
  };
}

function encodeToken(startedAt: number, attemptId: string): string {
  return Buffer.from(`${startedAt}:${attemptId}`).toString('base64url');
}

function decodeToken(token: string | undefined): { startedAt: number; attemptId: string } | undefined {
  if (!token) return undefined;
  const [t, id] = Buffer.from(token, 'base64url').toString().split(':');
  if (!t || !id || !Number.isFinite(Number(t))) return undefined;
  return { startedAt: Number(t), attemptId: id };
}
