import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { E, isThingsteadError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { FlowsStore, TaskRow } from './flows-store.js';
import type { Pipeline } from './pipeline.js';
import { parseTemplate } from './template.js';

/**
 * Bulk registration (AWS StartThingRegistrationTask and friends, reference §3.6): a file of template
 * parameters, one JSON object per line, each line run through the pipeline (flow `bulk`) with the task's
 * template body. AWS reads the file from S3; Thingstead reads
 *
 *   inputFileKey = an http:// or https:// URL             -> that URL (inputFileBucket is not used)
 *   otherwise                                            -> the local file <bulkInputDir>/<inputFileBucket>/<inputFileKey>
 *
 * (a local path must stay inside provisioning.bulkInputDir: the API cannot read other files of the server).
 * Status: InProgress -> Completed | Cancelling -> Cancelled | Failed (the input could not be read). Per line:
 * RESULTS `{"referenceId","response":{"certificatePem"?,"resourceArns"}}` and ERRORS
 * `{"referenceId","errorCode","errorMessage"}` (referenceId: the line number, from 1, as text), read back
 * through ListThingRegistrationTaskReports' links.
 *
 * Crash safety: the task row is leased by the process running it (renewed with each progress write); after a
 * crash another start (or node) takes the lapsed task and resumes at the lines without a result, while the
 * apply journal (apply.ts) undoes the registrations that were cut in half.
 */

export interface TaskRequest {
  readonly templateBody: string;
  readonly inputFileBucket: string;
  readonly inputFileKey: string;
  readonly roleArn: string;
  /** Secret part of the report links. */
  readonly reportSecret: string;
}

export interface RegistrationTasks {
  start(input: Omit<TaskRequest, 'reportSecret'>): Promise<{ taskId: string }>;
  describe(taskId: string): Promise<Record<string, unknown>>;
  list(input: { nextToken?: string; maxResults?: number; status?: string }): Promise<{
    taskIds: string[];
    nextToken?: string;
  }>;
  stop(taskId: string): Promise<void>;
  reportLinks(taskId: string, reportType: 'ERRORS' | 'RESULTS'): Promise<string[]>;
  reportFile(taskId: string, reportType: string, secret: string): Promise<string>;
  /** Take over tasks whose process died, those `ready` says may resume now. */
  resumeLapsed(ready: (taskId: string) => Promise<boolean>): Promise<number>;
  close(): Promise<void>;
}

const RESULTS_BATCH = 500;

const sameSecret = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export function createRegistrationTasks(options: {
  store: FlowsStore;
  pipeline: Pipeline;
  logger: Logger;
  bulkInputDir: string;
  concurrency: number;
  maxInputBytes: number;
  fetchTimeoutMs: number;
  leaseMs: number;
  /** Base URL of the HTTP API, for report links. */
  publicBase: () => string;
  now?: () => number;
}): RegistrationTasks {
  const { store, pipeline, logger } = options;
  const now = options.now ?? Date.now;
  const running = new Map<string, { cancel: boolean; done: Promise<void> }>();
  let closing = false;

  async function resolveLocal(bucket: string, key: string): Promise<string> {
    const root = resolve(options.bulkInputDir);
    const path = resolve(root, bucket, key);
    const rel = relative(root, path);
    if (rel.startsWith('..') || isAbsolute(rel) || bucket.includes('/') || bucket.startsWith('.'))
      throw E.RegistrationTaskInput({
        problem: `the file must be inside ${root} (bucket = a folder there, key = a path in it)`,
      });
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      throw E.RegistrationTaskInput({
        problem: `${join(bucket, key)} does not exist under ${root} (inputFileBucket is a folder there, inputFileKey a file in it; or give an http(s) URL as inputFileKey)`,
      });
    }
    const realRel = relative(await realpath(root), real);
    if (realRel.startsWith('..') || isAbsolute(realRel))
      throw E.RegistrationTaskInput({ problem: `the file leads outside ${root} (a link)` });
    const s = await stat(real);
    if (!s.isFile()) throw E.RegistrationTaskInput({ problem: `${join(bucket, key)} is not a file` });
    if (s.size > options.maxInputBytes)
      throw E.RegistrationTaskInput({
        problem: `the file is larger than ${options.maxInputBytes} bytes (provisioning.bulkMaxInputBytes)`,
      });
    return real;
  }

  async function readInput(req: TaskRequest): Promise<string> {
    if (/^https?:\/\//i.test(req.inputFileKey)) {
      let res: Response;
      try {
        res = await fetch(req.inputFileKey, { signal: AbortSignal.timeout(options.fetchTimeoutMs) });
      } catch (err) {
        throw E.RegistrationTaskInput({
          problem: `cannot fetch ${req.inputFileKey}: ${(err as Error).message}`,
        });
      }
      if (!res.ok)
        throw E.RegistrationTaskInput({ problem: `${req.inputFileKey} answered HTTP ${res.status}` });
      const text = await res.text();
      if (Buffer.byteLength(text) > options.maxInputBytes)
        throw E.RegistrationTaskInput({ problem: `the file is larger than ${options.maxInputBytes} bytes` });
      return text;
    }
    return readFile(await resolveLocal(req.inputFileBucket, req.inputFileKey), 'utf8');
  }

  function parseLine(text: string): Record<string, string> | string {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return 'the line is not JSON';
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      return 'the line is not a JSON object of parameters';
    const out: Record<string, string> = {};
    for (const [k, value] of Object.entries(v as Record<string, unknown>)) {
      if (typeof value === 'string') out[k] = value;
      else if (typeof value === 'number' || typeof value === 'boolean') out[k] = String(value);
      else return `parameter ${k} is not a string`;
    }
    return out;
  }

  async function run(row: TaskRow, control: { cancel: boolean }): Promise<void> {
    const req = JSON.parse(row.body) as TaskRequest;
    const taskId = row.taskId;
    const lease = () => now() + options.leaseMs;
    let text: string;
    try {
      text = await readInput(req);
    } catch (err) {
      const message = isThingsteadError(err) ? err.message : (err as Error).message;
      await store.updateTask(taskId, { status: 'Failed', message, lastModifiedAt: now() });
      return;
    }
    const lines = text.split(/\r?\n/);
    const work: Array<{ line: number; text: string }> = [];
    lines.forEach((t, i) => {
      if (t.trim() !== '') work.push({ line: i + 1, text: t });
    });
    const done = await store.doneTaskLines(taskId);
    // Counted from the stored results, not the last progress write: a resumed task also counts the results
    // stored after it (a CSR line's, inside its registration) and before the crash.
    const counted = await store.taskLineCounts(taskId);
    let success = Math.max(row.successCount, counted.ok);
    let failure = Math.max(row.failureCount, counted.failed);
    await store.updateTask(taskId, { total: work.length, lastModifiedAt: now(), leaseUntil: lease() });
    let pendingLines: { line: number; ok: boolean; body: string }[] = [];
    const flush = async () => {
      const batch = pendingLines;
      pendingLines = [];
      await store.insertTaskLines(taskId, batch);
      await store.updateTask(taskId, {
        successCount: success,
        failureCount: failure,
        lastModifiedAt: now(),
        leaseUntil: lease(),
      });
      // Another node may have been asked to stop it.
      const current = await store.getTask(taskId);
      if (current?.status === 'Cancelling') control.cancel = true;
    };
    let next = 0;
    const todo = work.filter((w) => !done.has(w.line));
    const worker = async () => {
      while (!control.cancel && !closing) {
        const item = todo[next++];
        if (!item) return;
        const params = parseLine(item.text);
        const referenceId = String(item.line);
        if (typeof params === 'string') {
          failure++;
          pendingLines.push({
            line: item.line,
            ok: false,
            body: JSON.stringify({ referenceId, errorCode: 'InvalidRequestException', errorMessage: params }),
          });
        } else {
          const resultBody = (r: {
            certificatePem?: string | undefined;
            resourceArns: Record<string, string>;
          }) =>
            JSON.stringify({
              referenceId,
              response: {
                ...(r.certificatePem !== undefined ? { certificatePem: r.certificatePem } : {}),
                resourceArns: r.resourceArns,
              },
            });
          const outcome = await pipeline.provision({
            flow: 'bulk',
            template: { body: req.templateBody },
            templateType: 'FLEET_PROVISIONING',
            parameters: params,
            taskId,
            line: item.line,
            resultBody,
          });
          if (outcome.ok) {
            success++;
            // A CSR line's result was stored within its registration (apply.ts), before its commit point.
            if (!outcome.resultRecorded)
              pendingLines.push({ line: item.line, ok: true, body: resultBody(outcome) });
          } else {
            failure++;
            pendingLines.push({
              line: item.line,
              ok: false,
              body: JSON.stringify({
                referenceId,
                errorCode: outcome.refusal.error.spec.awsName,
                errorMessage: outcome.refusal.error.message,
                attemptId: outcome.attemptId,
              }),
            });
          }
        }
        if (pendingLines.length >= RESULTS_BATCH) await flush();
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
    await flush();
    if (closing && !control.cancel) return; // another start resumes it (its lease lapses)
    await store.updateTask(taskId, {
      status: control.cancel ? 'Cancelled' : 'Completed',
      lastModifiedAt: now(),
      ...(control.cancel ? { message: 'Stopped by StopThingRegistrationTask' } : {}),
    });
  }

  function launch(row: TaskRow) {
    const control = { cancel: row.status === 'Cancelling', done: Promise.resolve() };
    control.done = run(row, control)
      .catch((err: unknown) => {
        logger.warn({ err, taskId: row.taskId }, 'thing registration task failed');
        return store
          .updateTask(row.taskId, { status: 'Failed', message: 'internal error', lastModifiedAt: now() })
          .catch(() => undefined);
      })
      .finally(() => running.delete(row.taskId));
    running.set(row.taskId, control);
  }

  const must = async (taskId: string) => {
    const row = await store.getTask(taskId);
    if (!row) throw E.RegistrationTaskNotFound({ taskId });
    return row;
  };

  return {
    async start(input) {
      const parsed = parseTemplate(input.templateBody);
      if (!parsed.ok) {
        const first = parsed.errors[0];
        throw E.ProvisioningTemplateInvalid({
          path: first?.path ?? '',
          problem: first?.message ?? 'invalid template',
          more: parsed.errors.length - 1,
        });
      }
      const request: TaskRequest = { ...input, reportSecret: randomBytes(24).toString('base64url') };
      // Check the input is reachable now, so a typo is an error of this call, not a Failed task later.
      if (!/^https?:\/\//i.test(input.inputFileKey))
        await resolveLocal(input.inputFileBucket, input.inputFileKey);
      const at = now();
      const row: TaskRow = {
        taskId: randomUUID(),
        body: JSON.stringify(request),
        status: 'InProgress',
        createdAt: at,
        lastModifiedAt: at,
        successCount: 0,
        failureCount: 0,
        total: 0,
        message: null,
      };
      await store.insertTask(row, at + options.leaseMs);
      launch(row);
      return { taskId: row.taskId };
    },

    async describe(taskId) {
      const row = await must(taskId);
      const req = JSON.parse(row.body) as TaskRequest;
      const finished = row.successCount + row.failureCount;
      const percentageProgress =
        row.status === 'Completed' ? 100 : row.total > 0 ? Math.floor((finished * 100) / row.total) : 0;
      return {
        taskId: row.taskId,
        creationDate: row.createdAt / 1000,
        lastModifiedDate: row.lastModifiedAt / 1000,
        templateBody: req.templateBody,
        inputFileBucket: req.inputFileBucket,
        inputFileKey: req.inputFileKey,
        roleArn: req.roleArn,
        status: row.status,
        ...(row.message ? { message: row.message } : {}),
        successCount: row.successCount,
        failureCount: row.failureCount,
        percentageProgress,
      };
    },

    async list(input) {
      const limit = Math.min(Math.max(input.maxResults ?? 50, 1), 250);
      const after = input.nextToken ? Buffer.from(input.nextToken, 'base64url').toString() : undefined;
      const rows = await store.listTasks({ after, status: input.status, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        taskIds: page.map((r) => r.taskId),
        ...(rows.length > limit && last ? { nextToken: Buffer.from(last.taskId).toString('base64url') } : {}),
      };
    },

    async stop(taskId) {
      const row = await must(taskId);
      if (row.status !== 'InProgress') throw E.RegistrationTaskState({ taskId, status: row.status });
      await store.updateTask(taskId, { status: 'Cancelling', lastModifiedAt: now() });
      const r = running.get(taskId);
      if (r) r.cancel = true;
    },

    async reportLinks(taskId, reportType) {
      const row = await must(taskId);
      const req = JSON.parse(row.body) as TaskRequest;
      return [
        `${options.publicBase()}/thing-registration-tasks/${encodeURIComponent(taskId)}/report-files/${reportType}/${req.reportSecret}`,
      ];
    },

    async reportFile(taskId, reportType, secret) {
      const row = await store.getTask(taskId);
      const req = row ? (JSON.parse(row.body) as TaskRequest) : undefined;
      if (
        !row ||
        !req ||
        !sameSecret(req.reportSecret, secret) ||
        (reportType !== 'ERRORS' && reportType !== 'RESULTS')
      )
        throw E.RegistrationReportLink();
      const out: string[] = [];
      let after = 0;
      for (;;) {
        const page = await store.taskLines(taskId, { ok: reportType === 'RESULTS', after, limit: 5000 });
        for (const l of page) out.push(l.body);
        if (page.length < 5000) break;
        after = page[page.length - 1]!.line;
      }
      return out.length ? out.join('\n') + '\n' : '';
    },

    async resumeLapsed(ready) {
      if (closing) return 0;
      const lapsed = await store.listTasks({ limit: 250, lapsedAt: now() });
      let resumed = 0;
      for (const row of lapsed) {
        if (running.has(row.taskId) || !(await ready(row.taskId))) continue;
        const [taken] = await store.takeLapsedTasks(now(), now() + options.leaseMs, row.taskId);
        if (!taken) continue;
        launch(taken);
        resumed++;
      }
      return resumed;
    },

    async close() {
      closing = true;
      await Promise.all([...running.values()].map((r) => r.done));
    },
  };
}
