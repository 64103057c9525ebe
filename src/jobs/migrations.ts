import type { Migration } from '../store/index.js';

/**
 * Jobs, their targets (what the rollout still has to reach), job executions (one row per attempt; `latest`
 * marks the current attempt of a job on a thing) and job templates. Times are epoch ms.
 * Version 2: the target ARNs a job was given (CreateJob, AssociateTargetsWithJob) leave the job row for rows
 * of their own (`job_target_arns`, kind and name split out for ListJobs by group and continuous-job
 * membership), so reading or writing a job no longer carries a list that can be 10,000 ARNs long.
 */
const tables = (big: string) => `
  CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY, status TEXT NOT NULL, target_selection TEXT NOT NULL, body TEXT NOT NULL,
    rollout TEXT NOT NULL, created_at ${big} NOT NULL, updated_at ${big} NOT NULL, completed_at ${big},
    version INTEGER NOT NULL);
  CREATE INDEX jobs_status ON jobs (status);
  CREATE TABLE job_targets (
    job_id TEXT NOT NULL, thing_name TEXT NOT NULL, seq ${big} NOT NULL, state INTEGER NOT NULL,
    PRIMARY KEY (job_id, thing_name));
  CREATE INDEX job_targets_pending ON job_targets (job_id, state, seq);
  CREATE TABLE job_executions (
    job_id TEXT NOT NULL, thing_name TEXT NOT NULL, execution_number INTEGER NOT NULL, status TEXT NOT NULL,
    status_details TEXT NOT NULL, version_number INTEGER NOT NULL, queued_at ${big} NOT NULL,
    started_at ${big}, last_updated_at ${big} NOT NULL, step_deadline ${big}, progress_deadline ${big},
    watchdog_deadline ${big}, due_at ${big}, retry_attempt INTEGER NOT NULL, force_canceled INTEGER NOT NULL,
    latest INTEGER NOT NULL, PRIMARY KEY (job_id, thing_name, execution_number));
  CREATE INDEX job_executions_thing ON job_executions (thing_name, latest, status);
  CREATE INDEX job_executions_job ON job_executions (job_id, latest, thing_name);
  CREATE INDEX job_executions_due ON job_executions (status, due_at);
  CREATE TABLE job_templates (
    job_template_id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at ${big} NOT NULL);
`;

const targetArns = `
  CREATE TABLE job_target_arns (
    job_id TEXT NOT NULL, position INTEGER NOT NULL, arn TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (job_id, position));
  CREATE INDEX job_target_arns_name ON job_target_arns (kind, name);
`;

export const JOBS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'jobs, job targets, job executions, job templates',
    sqlite: tables('INTEGER'),
    postgres: tables('BIGINT'),
  },
  {
    version: 2,
    description: 'job target ARNs in rows of their own (out of the job body)',
    // ARNs are arn:aws:iot:{region}:{account}:{thing|thinggroup}/{name}: one '/', names without one.
    sqlite:
      targetArns +
      `INSERT INTO job_target_arns (job_id, position, arn, kind, name)
         SELECT j.job_id, t.key, t.value,
                CASE WHEN t.value LIKE '%:thinggroup/%' THEN 'thinggroup' ELSE 'thing' END,
                substr(t.value, instr(t.value, '/') + 1)
         FROM jobs j, json_each(j.body, '$.targets') t;`,
    postgres:
      targetArns +
      `INSERT INTO job_target_arns (job_id, position, arn, kind, name)
         SELECT j.job_id, t.n - 1, t.arn,
                CASE WHEN t.arn LIKE '%:thinggroup/%' THEN 'thinggroup' ELSE 'thing' END,
                split_part(t.arn, '/', 2)
         FROM jobs j, jsonb_array_elements_text(j.body::jsonb -> 'targets') WITH ORDINALITY AS t (arn, n);`,
  },
];
