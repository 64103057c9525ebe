import type { Migration } from '../store/index.js';

/**
 * Jobs, their targets (what the rollout still has to reach), job executions (one row per attempt; `latest`
 * marks the current attempt of a job on a thing) and job templates. Times are epoch ms.
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

export const JOBS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'jobs, job targets, job executions, job templates',
    sqlite: tables('INTEGER'),
    postgres: tables('BIGINT'),
  },
];
