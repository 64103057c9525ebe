/**
 * The jobs control plane (reference §3.5): jobs, job executions seen from the operator, job templates.
 * Inputs arrive validated against the operation schemas (api.ts); this file holds the semantics:
 * - CreateJob takes its document inline, from a documentSource URL (fetched once, at create time) or from a
 *   job template (jobTemplateArn; the request's own members override the template's); documentParameters
 *   fill `${aws:iot:parameter:name}` placeholders. Targets are resolved to things at create time (thing
 *   groups: members and child groups' members). A schedulingConfig.startTime in the future makes it
 *   SCHEDULED. Executions are created by the rollout (rollout.ts), at once when no rate is configured.
 * - CancelJob without force cancels QUEUED executions, with force IN_PROGRESS ones too (§3.12); DeleteJob
 *   without force only deletes COMPLETED or CANCELED jobs.
 */
import { E } from '../errors/index.js';
import { decodeToken, page, timing, type JobsContext } from './context.js';
import { checkDocument, checkTemplateDocument, fetchDocument, substitute } from './documents.js';
import { checkStatusDetails, serviceTransition } from './executions.js';
import type { Reactions } from './reactions.js';
import { controlExecutionShape, controlSummaryShape, jobShape, jobSummaryShape } from './shapes.js';
import { parseTarget } from './targets.js';
import { compileWindows } from './windows.js';
import { isTerminal, type JobConfig, type JobRecord, type JobStatus, type TemplateRecord } from './types.js';

export interface CreateJobInput extends JobConfig {
  readonly jobId: string;
  readonly targets: readonly string[];
  readonly document?: string;
  readonly documentSource?: string;
  readonly description?: string;
  readonly targetSelection?: 'SNAPSHOT' | 'CONTINUOUS';
}

/**
 * Configuration members kept in the job (and copied from a template or a job: CreateJobTemplate with
 * jobArn). Tags are not among them: the tags context keeps them by ARN (ListTagsForResource).
 */
const CONFIG_KEYS = [
  'presignedUrlConfig',
  'jobExecutionsRolloutConfig',
  'abortConfig',
  'timeoutConfig',
  'jobExecutionsRetryConfig',
  'schedulingConfig',
  'namespaceId',
  'jobTemplateArn',
  'documentParameters',
  'destinationPackageVersions',
] as const;

function pickConfig(input: Record<string, any>): JobConfig {
  const out: Record<string, unknown> = {};
  for (const k of CONFIG_KEYS) if (input[k] !== undefined) out[k] = input[k];
  return out;
}

/** AWS's schedulingConfig times (`yyyy-MM-dd'T'HH:mm`, UTC) as epoch ms; null when absent. */
export function scheduleTime(config: JobConfig, member: 'startTime' | 'endTime'): number | null {
  const v = config.schedulingConfig?.[member];
  if (v === undefined) return null;
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  if (Number.isNaN(ms)) throw E.JobScheduling({ member, value: v });
  return ms;
}

export type JobsService = ReturnType<typeof createJobsService>;

/** AssociateTargetsWithJob: "the total number of targets associated with a job must not exceed 100" (AWS). */
export const MAX_ASSOCIATED_TARGETS = 100;

export function createJobsService(
  ctx: JobsContext,
  reactions: Reactions,
  /** Ask the rollout to look at a job now (launch what its rate allows). */
  kick: (jobId: string) => void,
) {
  const { store } = ctx;
  const templateId = (arn: string) => arn.slice(arn.lastIndexOf('/') + 1);

  async function mustJob(jobId: string): Promise<JobRecord> {
    const job = await store.getJob(jobId);
    if (!job) throw E.JobNotFound({ jobId });
    return job;
  }

  async function mustTemplate(jobTemplateId: string): Promise<TemplateRecord> {
    const t = await store.getTemplate(jobTemplateId);
    if (!t) throw E.JobTemplateNotFound({ jobTemplateId });
    return t;
  }

  /** The document text (before substitution) from the request or the template. */
  async function documentFrom(
    input: { document?: string | undefined; documentSource?: string | undefined },
    template: TemplateRecord | null,
  ): Promise<{ document: string; documentSource: string | null }> {
    if (input.document !== undefined && input.documentSource !== undefined) throw E.JobDocumentBoth();
    if (input.document !== undefined) return { document: input.document, documentSource: null };
    if (input.documentSource !== undefined)
      return {
        document: await fetchDocument(input.documentSource, ctx.documentFetchTimeoutMs),
        documentSource: input.documentSource,
      };
    if (template?.document) return { document: template.document, documentSource: null };
    if (template?.documentSource)
      return {
        document: await fetchDocument(template.documentSource, ctx.documentFetchTimeoutMs),
        documentSource: template.documentSource,
      };
    throw E.JobDocumentMissing();
  }

  /**
   * The things the target ARNs reach now, in target order, each once. Thing ARNs are checked 16 at a time
   * (a job may list 10,000 things individually; one by one that was a round trip each on PostgreSQL).
   */
  async function resolveTargets(targets: readonly string[]): Promise<string[]> {
    const refs = targets.map(parseTarget);
    const reached: string[][] = new Array(refs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(16, refs.length) }, async () => {
        while (next < refs.length) {
          const i = next++;
          reached[i] = await ctx.targets.thingsOf(refs[i]!);
        }
      }),
    );
    return [...new Set(reached.flat())];
  }

  async function putWithRetry(jobId: string, change: (job: JobRecord) => JobRecord): Promise<JobRecord> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const job = await mustJob(jobId);
      const next = { ...change(job), version: job.version + 1, updatedAt: ctx.now() };
      if (await store.putJob(next, job.version)) return next;
    }
    throw E.JobWriteConflict({ jobId });
  }

  async function mustExecution(jobId: string, thingName: string, executionNumber?: number) {
    const e = await store.getExecution(jobId, thingName, executionNumber);
    if (!e) throw E.JobExecutionNotFound({ jobId, thingName });
    return e;
  }

  return {
    async createJob(input: CreateJobInput) {
      ctx.tags?.check(input.tags);
      if (await store.getJob(input.jobId)) throw E.JobAlreadyExists({ jobId: input.jobId });
      const template = input.jobTemplateArn ? await mustTemplate(templateId(input.jobTemplateArn)) : null;
      const { document, documentSource } = await documentFrom(input, template);
      const config: JobConfig = { ...(template?.config ?? {}), ...pickConfig(input) };
      checkDocument(substitute(document, config.documentParameters));
      const start = scheduleTime(config, 'startTime');
      const end = scheduleTime(config, 'endTime');
      if (start !== null && end !== null && end <= start)
        throw E.JobScheduling({ member: 'endTime', value: config.schedulingConfig!.endTime! });
      compileWindows(config.schedulingConfig?.maintenanceWindows); // throws on a bad cron expression
      const things = await resolveTargets(input.targets);
      const now = ctx.now();
      const status: JobStatus = start !== null && start > now ? 'SCHEDULED' : 'IN_PROGRESS';
      const job: JobRecord = {
        jobId: input.jobId,
        status,
        targetSelection: input.targetSelection ?? 'SNAPSHOT',
        targetCount: input.targets.length,
        firstTarget: input.targets[0] ?? '',
        document,
        documentSource,
        description: input.description ?? template?.description ?? null,
        config,
        forceCanceled: false,
        reasonCode: null,
        comment: null,
        createdAt: now,
        updatedAt: now,
        completedAt: null,
        version: 1,
        rollout: {
          created: 0,
          rate: config.jobExecutionsRolloutConfig?.exponentialRate?.baseRatePerMinute ?? null,
          windowStart: now,
          windowCount: 0,
          lastIncrease: { notified: 0, succeeded: 0 },
          exhausted: false,
        },
      };
      if (!(await store.insertJob(job, input.targets, things)))
        throw E.JobAlreadyExists({ jobId: input.jobId });
      await ctx.tags?.add(ctx.arn('job', job.jobId), input.tags);
      kick(job.jobId);
      return {
        jobArn: ctx.arn('job', job.jobId),
        jobId: job.jobId,
        ...(job.description !== null ? { description: job.description } : {}),
      };
    },

    /**
     * AssociateTargetsWithJob (reference §3.5): more thing groups (or things) for an IN_PROGRESS CONTINUOUS
     * job, at most MAX_ASSOCIATED_TARGETS target ARNs in all (AWS's criteria). ARNs the job has already
     * are skipped; the things the new ones reach are launched by the rollout like any new target.
     */
    async associateTargetsWithJob(input: { jobId: string; targets: readonly string[]; comment?: string }) {
      for (let attempt = 0; attempt < 10; attempt++) {
        const job = await mustJob(input.jobId);
        if (job.targetSelection !== 'CONTINUOUS' || job.status !== 'IN_PROGRESS')
          throw E.JobAssociateInvalid({
            jobId: job.jobId,
            status: job.status,
            targetSelection: job.targetSelection,
          });
        const known = new Set(await store.targetArns(job.jobId));
        const added = [...new Set(input.targets)].filter((t) => !known.has(t));
        const count = known.size + added.length;
        if (count > MAX_ASSOCIATED_TARGETS)
          throw E.JobTargetLimit({ jobId: job.jobId, count, limit: MAX_ASSOCIATED_TARGETS });
        const things = await resolveTargets(added);
        const next: JobRecord = {
          ...job,
          targetCount: job.targetCount + added.length,
          comment: input.comment ?? job.comment,
          rollout: { ...job.rollout, exhausted: job.rollout.exhausted && things.length === 0 },
          updatedAt: ctx.now(),
          version: job.version + 1,
        };
        if (await store.associate(next, job.version, added, things)) {
          kick(job.jobId);
          return {
            jobArn: ctx.arn('job', job.jobId),
            jobId: job.jobId,
            ...(job.description !== null ? { description: job.description } : {}),
          };
        }
      }
      throw E.JobWriteConflict({ jobId: input.jobId });
    },

    async describeJob(input: { jobId: string; beforeSubstitution?: boolean }) {
      const job = await mustJob(input.jobId);
      return {
        ...(job.documentSource !== null ? { documentSource: job.documentSource } : {}),
        job: jobShape(
          job,
          await store.counts(job.jobId),
          await store.targetArns(job.jobId),
          (t, n) => ctx.arn(t, n),
          ctx.now(),
        ),
      };
    },

    async getJobDocument(input: { jobId: string; beforeSubstitution?: boolean }) {
      const job = await mustJob(input.jobId);
      return {
        document: input.beforeSubstitution
          ? job.document
          : substitute(job.document, job.config.documentParameters),
      };
    },

    async listJobs(input: {
      status?: JobStatus;
      targetSelection?: 'SNAPSHOT' | 'CONTINUOUS';
      maxResults?: number;
      nextToken?: string;
      thingGroupName?: string;
      thingGroupId?: string;
      namespaceId?: string;
    }) {
      const limit = input.maxResults ?? 50;
      const group = input.thingGroupName ?? input.thingGroupId;
      const wanted = (j: JobRecord) =>
        input.namespaceId === undefined || j.config.namespaceId === input.namespaceId;
      const rows: JobRecord[] = [];
      let after = decodeToken(input.nextToken);
      for (;;) {
        const batch = await store.listJobs({
          status: input.status,
          targetSelection: input.targetSelection,
          ...(group !== undefined ? { thingGroup: group } : {}),
          after,
          limit: 250,
        });
        rows.push(...batch.filter(wanted));
        if (rows.length > limit || batch.length < 250) break;
        after = batch[batch.length - 1]!.jobId;
      }
      const p = page(rows, limit, (j) => j.jobId);
      return {
        jobs: p.items.map((j) => jobSummaryShape(j, (t, n) => ctx.arn(t, n))),
        ...(p.nextToken ? { nextToken: p.nextToken } : {}),
      };
    },

    async updateJob(input: JobConfig & { jobId: string; description?: string }) {
      const job = await mustJob(input.jobId);
      if (job.status !== 'IN_PROGRESS' && job.status !== 'SCHEDULED')
        throw E.JobTerminal({ jobId: job.jobId, status: job.status, what: 'updated' });
      const updatable = [
        'presignedUrlConfig',
        'jobExecutionsRolloutConfig',
        'abortConfig',
        'timeoutConfig',
        'jobExecutionsRetryConfig',
      ] as const;
      await putWithRetry(input.jobId, (j) => {
        const config: Record<string, unknown> = { ...j.config };
        for (const k of updatable) if (input[k] !== undefined) config[k] = input[k];
        return {
          ...j,
          description: input.description ?? j.description,
          config: config,
        };
      });
      kick(input.jobId);
      await reactions.checkJob(input.jobId);
      return {};
    },

    async cancelJob(input: { jobId: string; force?: boolean; reasonCode?: string; comment?: string }) {
      const job = await mustJob(input.jobId);
      const done = await reactions.cancelJob(input.jobId, {
        force: input.force === true,
        reasonCode: input.reasonCode,
        comment: input.comment,
      });
      if (!done) {
        const now = (await store.getJob(input.jobId)) ?? job;
        throw E.JobTerminal({ jobId: job.jobId, status: now.status, what: 'canceled' });
      }
      return {
        jobArn: ctx.arn('job', done.jobId),
        jobId: done.jobId,
        ...(done.description !== null ? { description: done.description } : {}),
      };
    },

    async deleteJob(input: { jobId: string; force?: boolean; namespaceId?: string }) {
      const job = await mustJob(input.jobId);
      const terminal = job.status === 'COMPLETED' || job.status === 'CANCELED';
      if (!terminal && !input.force) throw E.JobNotTerminal({ jobId: job.jobId, status: job.status });
      const deleting = await putWithRetry(job.jobId, (j) => ({ ...j, status: 'DELETION_IN_PROGRESS' }));
      const targets = ctx.eventsEnabled('JOB') ? await store.targetArns(job.jobId) : [];
      await reactions.jobEvent(deleting, 'deletion_in_progress', { targets });
      await store.dropPendingTargets(job.jobId);
      // Pending executions leave their things' lists before the rows go.
      const pending = await store.executionsInState(job.jobId, ['QUEUED', 'IN_PROGRESS'], 1_000_000);
      await store.deleteJob(job.jobId);
      await ctx.tags?.removeAll(ctx.arn('job', job.jobId));
      reactions.forget(job.jobId);
      for (const e of pending) await reactions.executionChanged(e, null, { checkJob: false });
      await reactions.jobEvent(deleting, 'deleted', { targets });
      return {};
    },

    async describeJobExecution(input: { jobId: string; thingName: string; executionNumber?: number }) {
      const e = await mustExecution(input.jobId, input.thingName, input.executionNumber);
      return { execution: controlExecutionShape(e, ctx.arn('thing', e.thingName), ctx.now()) };
    },

    async listJobExecutionsForJob(input: {
      jobId: string;
      status?: import('./types.js').ExecutionStatus;
      maxResults?: number;
      nextToken?: string;
    }) {
      await mustJob(input.jobId);
      const limit = input.maxResults ?? 50;
      const rows = await store.listForJob(input.jobId, {
        status: input.status,
        after: decodeToken(input.nextToken),
        limit: limit + 1,
      });
      const p = page(rows, limit, (e) => e.thingName);
      return {
        executionSummaries: p.items.map((e) => ({
          thingArn: ctx.arn('thing', e.thingName),
          jobExecutionSummary: controlSummaryShape(e),
        })),
        ...(p.nextToken ? { nextToken: p.nextToken } : {}),
      };
    },

    async listJobExecutionsForThing(input: {
      thingName: string;
      status?: import('./types.js').ExecutionStatus;
      namespaceId?: string;
      jobId?: string;
      maxResults?: number;
      nextToken?: string;
    }) {
      if (!(await ctx.targets.thingExists(input.thingName)))
        throw E.JobTargetNotFound({ target: ctx.arn('thing', input.thingName) });
      const limit = input.maxResults ?? 50;
      const rows = await store.listForThing(input.thingName, {
        status: input.status,
        jobId: input.jobId,
        after: decodeToken(input.nextToken),
        limit: limit + 1,
      });
      const p = page(rows, limit, (e) => e.jobId);
      return {
        executionSummaries: p.items.map((e) => ({
          jobId: e.jobId,
          jobExecutionSummary: controlSummaryShape(e),
        })),
        ...(p.nextToken ? { nextToken: p.nextToken } : {}),
      };
    },

    async cancelJobExecution(input: {
      jobId: string;
      thingName: string;
      force?: boolean;
      expectedVersion?: number;
      statusDetails?: Record<string, string>;
    }) {
      const job = await mustJob(input.jobId);
      const e = await mustExecution(input.jobId, input.thingName);
      if (input.expectedVersion !== undefined && input.expectedVersion !== e.versionNumber)
        throw E.JobExecutionVersionConflict({ expected: input.expectedVersion, actual: e.versionNumber });
      if (isTerminal(e.status))
        throw E.JobExecutionTransition({
          jobId: e.jobId,
          thingName: e.thingName,
          from: e.status,
          to: 'CANCELED',
        });
      if (e.status === 'IN_PROGRESS' && !input.force)
        throw E.JobExecutionForceNeeded({ jobId: e.jobId, thingName: e.thingName, status: e.status });
      const details = input.statusDetails === undefined ? undefined : checkStatusDetails(input.statusDetails);
      const next = serviceTransition(e, 'CANCELED', timing(ctx, job), {
        ...(details ? { details } : {}),
        forceCanceled: e.status === 'IN_PROGRESS',
      });
      if (!(await store.putExecution(next, e.versionNumber)))
        throw E.JobExecutionVersionConflict({ expected: e.versionNumber, actual: e.versionNumber + 1 });
      await reactions.executionChanged(e, next);
      return {};
    },

    async deleteJobExecution(input: {
      jobId: string;
      thingName: string;
      executionNumber: number;
      force?: boolean;
      namespaceId?: string;
    }) {
      const e = await mustExecution(input.jobId, input.thingName, input.executionNumber);
      if (!isTerminal(e.status) && !input.force)
        throw E.JobExecutionForceNeeded({ jobId: e.jobId, thingName: e.thingName, status: e.status });
      const latest = await store.getExecution(e.jobId, e.thingName);
      await store.deleteExecution(e.jobId, e.thingName, e.executionNumber);
      if (latest && latest.executionNumber === e.executionNumber) await reactions.executionChanged(e, null);
      return {};
    },

    // ---- job templates ----------------------------------------------------------------------------

    async createJobTemplate(
      input: JobConfig & {
        jobTemplateId: string;
        description: string;
        jobArn?: string;
        document?: string;
        documentSource?: string;
        maintenanceWindows?: { startTime: string; durationInMinutes: number }[];
      },
    ) {
      ctx.tags?.check(input.tags);
      if (await store.getTemplate(input.jobTemplateId))
        throw E.JobTemplateAlreadyExists({ jobTemplateId: input.jobTemplateId });
      const fromJob = input.jobArn !== undefined;
      if (fromJob === (input.document !== undefined || input.documentSource !== undefined))
        throw E.JobTemplateSource();
      if (input.document !== undefined && input.documentSource !== undefined) throw E.JobDocumentBoth();
      let document = input.document ?? null;
      const documentSource = input.documentSource ?? null;
      let config = pickConfig(input);
      if (input.maintenanceWindows !== undefined) {
        compileWindows(input.maintenanceWindows);
        config = { ...config, schedulingConfig: { maintenanceWindows: input.maintenanceWindows } };
      }
      if (fromJob) {
        const job = await mustJob(input.jobArn!.slice(input.jobArn!.lastIndexOf('/') + 1));
        document = job.document;
        config = { ...pickConfig(job.config as Record<string, unknown>), ...config };
      } else if (document !== null) checkTemplateDocument(document);
      const template: TemplateRecord = {
        jobTemplateId: input.jobTemplateId,
        description: input.description,
        document,
        documentSource,
        config,
        createdAt: ctx.now(),
      };
      if (!(await store.insertTemplate(template)))
        throw E.JobTemplateAlreadyExists({ jobTemplateId: input.jobTemplateId });
      await ctx.tags?.add(ctx.arn('jobtemplate', template.jobTemplateId), input.tags);
      return {
        jobTemplateArn: ctx.arn('jobtemplate', template.jobTemplateId),
        jobTemplateId: template.jobTemplateId,
      };
    },

    async describeJobTemplate(input: { jobTemplateId: string }) {
      const t = await mustTemplate(input.jobTemplateId);
      const c = t.config;
      return {
        jobTemplateArn: ctx.arn('jobtemplate', t.jobTemplateId),
        jobTemplateId: t.jobTemplateId,
        ...(t.description !== null ? { description: t.description } : {}),
        ...(t.documentSource !== null ? { documentSource: t.documentSource } : {}),
        ...(t.document !== null ? { document: t.document } : {}),
        createdAt: new Date(t.createdAt),
        ...(c.presignedUrlConfig ? { presignedUrlConfig: c.presignedUrlConfig } : {}),
        ...(c.jobExecutionsRolloutConfig ? { jobExecutionsRolloutConfig: c.jobExecutionsRolloutConfig } : {}),
        ...(c.abortConfig ? { abortConfig: c.abortConfig } : {}),
        ...(c.timeoutConfig ? { timeoutConfig: c.timeoutConfig } : {}),
        ...(c.jobExecutionsRetryConfig ? { jobExecutionsRetryConfig: c.jobExecutionsRetryConfig } : {}),
        ...(c.destinationPackageVersions ? { destinationPackageVersions: c.destinationPackageVersions } : {}),
        ...(c.schedulingConfig?.maintenanceWindows
          ? { maintenanceWindows: c.schedulingConfig.maintenanceWindows }
          : {}),
      };
    },

    async listJobTemplates(input: { maxResults?: number; nextToken?: string }) {
      const limit = input.maxResults ?? 50;
      const rows = await store.listTemplates({ after: decodeToken(input.nextToken), limit: limit + 1 });
      const p = page(rows, limit, (t) => t.jobTemplateId);
      return {
        jobTemplates: p.items.map((t) => ({
          jobTemplateArn: ctx.arn('jobtemplate', t.jobTemplateId),
          jobTemplateId: t.jobTemplateId,
          ...(t.description !== null ? { description: t.description } : {}),
          createdAt: new Date(t.createdAt),
        })),
        ...(p.nextToken ? { nextToken: p.nextToken } : {}),
      };
    },

    async deleteJobTemplate(input: { jobTemplateId: string }) {
      if (!(await store.deleteTemplate(input.jobTemplateId)))
        throw E.JobTemplateNotFound({ jobTemplateId: input.jobTemplateId });
      await ctx.tags?.removeAll(ctx.arn('jobtemplate', input.jobTemplateId));
      return {};
    },
  };
}
