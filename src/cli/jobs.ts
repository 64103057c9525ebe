import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { SignedFetchOptions } from '../api/index.js';
import { encodePath } from '../api/index.js';
import {
  CliError,
  call,
  collect,
  connectionOptions,
  listAll,
  parseAttributes,
  printRecord,
  printTable,
  withConnection,
  type CommandFlags,
} from './connection.js';

/**
 * `thingstead jobs create|list|describe|cancel|delete|executions`: jobs over the AWS-compatible API (the
 * same calls as `aws iot create-job` etc.). `describe --watch` redraws the rollout's progress until the job
 * is COMPLETED or CANCELED.
 */

const epoch = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : v);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** `--target` values: an ARN as is, `thing/NAME` or `group/NAME` looked up for their ARNs. */
async function targetArns(conn: SignedFetchOptions, targets: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of targets) {
    if (t.startsWith('arn:')) out.push(t);
    else if (t.startsWith('thing/'))
      out.push((await call(conn, 'GET', `/things/${encodePath(t.slice(6))}`)).thingArn as string);
    else if (t.startsWith('group/'))
      out.push((await call(conn, 'GET', `/thing-groups/${encodePath(t.slice(6))}`)).thingGroupArn as string);
    else throw new CliError(`--target ${t}: give an ARN, thing/NAME or group/NAME`);
  }
  return out;
}

function createBody(flags: CommandFlags, targets: string[]): Record<string, unknown> {
  const sources = [flags.document, flags.documentFile, flags.documentSource, flags.template].filter(Boolean);
  if (sources.length !== 1)
    throw new CliError(
      'give exactly one of --document JSON, --document-file FILE, --document-source URL, --template ID',
    );
  const document = flags.documentFile ? readFileSync(String(flags.documentFile), 'utf8') : flags.document;
  if (document !== undefined) parseJson(String(document), 'the job document');
  const num = (v: unknown, name: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new CliError(`${name} must be a number`);
    return n;
  };
  return {
    targets,
    ...(document !== undefined ? { document: String(document) } : {}),
    ...(flags.documentSource ? { documentSource: flags.documentSource } : {}),
    ...(flags.template ? { jobTemplateArn: `jobtemplate/${flags.template}` } : {}),
    ...(flags.description ? { description: flags.description } : {}),
    targetSelection: flags.continuous ? 'CONTINUOUS' : 'SNAPSHOT',
    ...(flags.rate ? { jobExecutionsRolloutConfig: { maximumPerMinute: num(flags.rate, '--rate') } } : {}),
    ...(flags.timeoutMinutes
      ? { timeoutConfig: { inProgressTimeoutInMinutes: num(flags.timeoutMinutes, '--timeout-minutes') } }
      : {}),
    ...(flags.abortAfter
      ? {
          abortConfig: {
            criteriaList: [
              {
                failureType: 'ALL',
                action: 'CANCEL',
                thresholdPercentage: num(flags.abortAfter, '--abort-after'),
                minNumberOfExecutedThings: num(flags.abortMin ?? 1, '--abort-min'),
              },
            ],
          },
        }
      : {}),
    ...(flags.retries
      ? {
          jobExecutionsRetryConfig: {
            criteriaList: [{ failureType: 'ALL', numberOfRetries: num(flags.retries, '--retries') }],
          },
        }
      : {}),
    ...(flags.param ? { documentParameters: parseAttributes(flags.param as string[]) } : {}),
  };
}

/** One line of rollout progress. */
function progressLine(job: Record<string, any>): string {
  const d = (job.jobProcessDetails ?? {}) as Record<string, number>;
  const parts = [
    ['queued', d.numberOfQueuedThings],
    ['in progress', d.numberOfInProgressThings],
    ['succeeded', d.numberOfSucceededThings],
    ['failed', d.numberOfFailedThings],
    ['rejected', d.numberOfRejectedThings],
    ['timed out', d.numberOfTimedOutThings],
    ['canceled', d.numberOfCanceledThings],
    ['removed', d.numberOfRemovedThings],
  ] as const;
  const total = parts.reduce((n, [, v]) => n + (v ?? 0), 0);
  const done = total - (d.numberOfQueuedThings ?? 0) - (d.numberOfInProgressThings ?? 0);
  return `${new Date().toISOString()}  ${job.status}  ${done}/${total} done  ${parts
    .filter(([, v]) => v)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`;
}

export function registerJobs(program: Command): void {
  const jobs = connectionOptions(new Command('jobs').description('Create and follow jobs (AWS IoT Jobs).'));

  jobs
    .command('create <jobId>')
    .description('Create a job for things and thing groups.')
    .requiredOption('--target <arn|thing/NAME|group/NAME>', 'a target (repeatable)', collect)
    .option('--document <json>', 'the job document')
    .option('--document-file <file>', 'read the job document from a file')
    .option('--document-source <url>', 'an http(s) URL the platform fetches the document from')
    .option('--template <jobTemplateId>', 'take document and settings from a job template')
    .option(
      '--param <name=value>',
      'a documentParameters entry for ${aws:iot:parameter:name} (repeatable)',
      collect,
    )
    .option('--description <text>', 'description')
    .option('--continuous', 'also reach things that join the target groups later')
    .option('--rate <perMinute>', 'jobExecutionsRolloutConfig.maximumPerMinute')
    .option('--timeout-minutes <n>', 'timeoutConfig.inProgressTimeoutInMinutes')
    .option('--abort-after <percent>', 'cancel the job when this % of executed things failed (abortConfig)')
    .option('--abort-min <n>', 'abortConfig minNumberOfExecutedThings (default 1)')
    .option('--retries <n>', 'jobExecutionsRetryConfig: retries of FAILED and TIMED_OUT executions')
    .action(
      withConnection(async (conn, flags, jobId) => {
        const body = createBody(flags, await targetArns(conn, flags.target as string[]));
        if (body.jobTemplateArn) {
          const t = await call(conn, 'GET', `/job-templates/${encodePath(String(flags.template))}`);
          body.jobTemplateArn = t.jobTemplateArn;
        }
        const r = await call(conn, 'PUT', `/jobs/${encodePath(jobId)}`, { body });
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        console.log(`created job ${r.jobId} (${r.jobArn})`);
        console.log(`follow it: thingstead jobs describe ${r.jobId} --watch`);
      }),
    );

  jobs
    .command('list')
    .description('List jobs.')
    .option('--status <status>', 'IN_PROGRESS, SCHEDULED, COMPLETED, CANCELED or DELETION_IN_PROGRESS')
    .option('--group <thingGroupName>', 'only jobs targeting this thing group')
    .action(
      withConnection(async (conn, flags) => {
        const items = await listAll(
          conn,
          '/jobs',
          'jobs',
          { status: flags.status, thingGroupName: flags.group },
          10_000,
        );
        if (flags.json) return console.log(JSON.stringify(items, null, 2));
        printTable(
          items.map((j) => ({ ...j, createdAt: epoch(j.createdAt), completedAt: epoch(j.completedAt) })),
          ['jobId', 'status', 'targetSelection', 'createdAt', 'completedAt'],
        );
      }),
    );

  jobs
    .command('describe <jobId>')
    .description('Show a job and its rollout progress; --watch follows it until it ends.')
    .option('--watch', 'print progress every --interval until the job is COMPLETED or CANCELED')
    .option('--interval <ms>', 'watch interval in ms', '1000')
    .action(
      withConnection(async (conn, flags, jobId) => {
        const describe = async () =>
          (await call(conn, 'GET', `/jobs/${encodePath(jobId)}`)).job as Record<string, any>;
        let job = await describe();
        if (flags.json && !flags.watch) return console.log(JSON.stringify(job, null, 2));
        if (!flags.watch) {
          printRecord({
            jobId: job.jobId,
            status: job.status,
            targetSelection: job.targetSelection,
            targets: job.targets,
            description: job.description,
            createdAt: epoch(job.createdAt),
            completedAt: epoch(job.completedAt),
            reasonCode: job.reasonCode,
            comment: job.comment,
          });
          console.log(progressLine(job));
          return;
        }
        const interval = Math.max(50, Number(flags.interval) || 1000);
        let last = '';
        for (;;) {
          const line = progressLine(job);
          const key = line.slice(line.indexOf(' ') + 2);
          if (key !== last) console.log(flags.json ? JSON.stringify(job.jobProcessDetails) : line);
          last = key;
          if (job.status === 'COMPLETED' || job.status === 'CANCELED') return;
          await new Promise((r) => setTimeout(r, interval));
          job = await describe();
        }
      }),
    );

  jobs
    .command('cancel <jobId>')
    .description('Cancel a job: QUEUED executions are canceled; with --force IN_PROGRESS ones too.')
    .option('--force', 'also cancel IN_PROGRESS executions')
    .option('--reason-code <CODE>', 'reasonCode ([A-Z0-9_]+)')
    .option('--comment <text>', 'comment')
    .action(
      withConnection(async (conn, flags, jobId) => {
        await call(conn, 'PUT', `/jobs/${encodePath(jobId)}/cancel`, {
          query: flags.force ? { force: true } : {},
          body: {
            ...(flags.reasonCode ? { reasonCode: flags.reasonCode } : {}),
            ...(flags.comment ? { comment: flags.comment } : {}),
          },
        });
        console.log(`canceled job ${jobId}${flags.force ? ' (force)' : ''}`);
      }),
    );

  jobs
    .command('delete <jobId>')
    .description('Delete a COMPLETED or CANCELED job (--force: any job, its executions too).')
    .option('--force', 'delete even while executions are live')
    .action(
      withConnection(async (conn, flags, jobId) => {
        await call(conn, 'DELETE', `/jobs/${encodePath(jobId)}`, {
          query: flags.force ? { force: true } : {},
        });
        console.log(`deleted job ${jobId}`);
      }),
    );

  jobs
    .command('executions [jobId]')
    .description("A job's executions, or with --thing a thing's.")
    .option('--thing <thingName>', "list this thing's executions (of every job, or of jobId)")
    .option(
      '--status <status>',
      'QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED',
    )
    .action(
      withConnection(async (conn, flags, jobId) => {
        if (!jobId && !flags.thing) throw new CliError('give a jobId, or --thing <thingName>');
        const items = flags.thing
          ? await listAll(
              conn,
              `/things/${encodePath(String(flags.thing))}/jobs`,
              'executionSummaries',
              { status: flags.status, jobId },
              10_000,
            )
          : await listAll(
              conn,
              `/jobs/${encodePath(jobId)}/things`,
              'executionSummaries',
              { status: flags.status },
              100_000,
            );
        if (flags.json) return console.log(JSON.stringify(items, null, 2));
        printTable(
          items.map((e) => ({
            thing: e.thingArn
              ? String(e.thingArn).slice(String(e.thingArn).indexOf(':thing/') + 7)
              : flags.thing,
            jobId: e.jobId ?? jobId,
            status: e.jobExecutionSummary.status,
            executionNumber: e.jobExecutionSummary.executionNumber,
            retryAttempt: e.jobExecutionSummary.retryAttempt,
            queuedAt: epoch(e.jobExecutionSummary.queuedAt),
            lastUpdatedAt: epoch(e.jobExecutionSummary.lastUpdatedAt),
          })),
          ['thing', 'jobId', 'status', 'executionNumber', 'retryAttempt', 'queuedAt', 'lastUpdatedAt'],
        );
      }),
    );

  program.addCommand(jobs);
}
