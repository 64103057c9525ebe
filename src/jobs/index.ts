/**
 * Jobs (reference §3.5, §5, §8.3): jobs, job executions and job templates on the control plane
 * (`@aws-sdk/client-iot`), the device side over MQTT (`$aws/things/{thing}/jobs/...`) and the jobs data
 * plane (`@aws-sdk/client-iot-jobs-data-plane`), rollouts (rate, exponential rate, abort, retries,
 * scheduling), timers and the watchdog, and `$aws/events/job...` events.
 *
 * Files by role: types.ts (records), store.ts + migrations.ts (SQLite/PostgreSQL), executions.ts (the
 * execution state machine, pure), documents.ts (document sources, parameters), targets.ts (what it reads of
 * the registry), service.ts (control plane), device.ts (device side), reactions.ts (notify, events, retries,
 * abort, completion), rollout.ts (the one runner of rollouts and timers), mqtt.ts (the MQTT service),
 * shapes.ts (wire shapes), api.ts (operations), module.ts (`startJobs`).
 *
 * Imports: api (operation declarations), errors, store, tags (the tag list schema; its ResourceTags keep the
 * tags given to CreateJob and CreateJobTemplate); types only from config, events, mqtt (the broker:
 * registerService, deliverTo, publish), observability and registry (its service, handed in by the platform).
 */
export { startJobs, type Jobs, type JobsOptions } from './module.js';
export type { JobsService } from './service.js';
export type { DeviceJobs } from './device.js';
export type { Rollout } from './rollout.js';
export type { JobsStore } from './store.js';
export type { ExecutionRecord, ExecutionStatus, JobRecord, JobStatus, TemplateRecord } from './types.js';
