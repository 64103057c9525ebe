import type { StartedContext } from '../api/index.js';
import type { Config } from '../config/index.js';
import type { ChangeChannel } from '../events/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import type { ThingRegistry } from '../registry/index.js';
import type { Database } from '../store/index.js';
import type { ResourceTags } from '../tags/index.js';
import { jobsControlOperations, jobsDataOperations } from './api.js';
import type { DeliverDocument, JobsContext } from './context.js';
import { createDeviceJobs, type DeviceJobs } from './device.js';
import { jobsMqttService } from './mqtt.js';
import { createReactions } from './reactions.js';
import { startRollout, type Rollout } from './rollout.js';
import { createJobsService, type JobsService } from './service.js';
import { createJobsStore, type JobsStore } from './store.js';
import { registryTargets } from './targets.js';

export interface JobsOptions {
  readonly db: Database;
  /** Change events: `thing` and `membership` drive continuous jobs. */
  readonly events?: ChangeChannel;
  /** Serves the MQTT topics (registerService), replies (deliverTo) and notifications (publish). */
  readonly broker: Pick<Broker, 'registerService' | 'deliverTo' | 'publish'>;
  /** Things, groups and event configurations (read through its service). */
  readonly registry: Pick<
    ThingRegistry,
    | 'describeThing'
    | 'describeThingGroup'
    | 'listThingsInThingGroup'
    | 'listThingGroupsForThing'
    | 'describeEventConfigurations'
  >;
  readonly logger: Logger;
  readonly region: string;
  readonly accountId: string;
  readonly config: Config['jobs'];
  /** Clock (tests). */
  readonly now?: () => number;
  /** Delivery-time document hook (see DeliverDocument): the OTA context's presigned-URL resolution. */
  readonly deliverDocument?: DeliverDocument;
  /** Keeps the tags CreateJob and CreateJobTemplate are given (src/tags); without it they are not kept. */
  readonly tags?: ResourceTags;
  /** Usage metering: job executions created, per thing (src/metering). */
  readonly onExecutionsCreated?: (thingNames: readonly string[]) => void;
  /** Cluster mode: does this node run the single-runner task (`jobs.rollout`)? See rollout.ts. */
  readonly runsHere?: ((task: string) => boolean) | undefined;
}

/** The jobs context as other code sees it. */
export interface Jobs {
  /** Control plane: jobs, executions, templates (the AWS operations' semantics). */
  readonly service: JobsService;
  /** Device side (MQTT and the jobs data plane). */
  readonly device: DeviceJobs;
  readonly rollout: Rollout;
  readonly store: JobsStore;
}

/**
 * Start the jobs context: its store (migrated), the rollout runner, the MQTT service on
 * `$aws/things/+/jobs/...` and its control-plane and data-plane operations. Starts after the broker and
 * the registry; closing stops the runner and drains the MQTT queue.
 * @example const jobs = await startJobs({ db, events, broker, registry, logger, region, accountId, config: config.jobs });
 */
export async function startJobs(options: JobsOptions): Promise<StartedContext<Jobs>> {
  const store = await createJobsStore(options.db);
  const targets = registryTargets(options.registry);
  const { region, accountId, broker } = options;
  const cfg = options.config;
  const ctx: JobsContext = {
    store,
    targets,
    logger: options.logger,
    now: options.now ?? Date.now,
    minuteMs: cfg.minuteMs,
    watchdogMs: cfg.watchdogMinutes * cfg.minuteMs,
    documentFetchTimeoutMs: cfg.documentFetchTimeoutMs,
    arn: (type, name) => `arn:aws:iot:${region}:${accountId}:${type}/${name}`,
    publish: (topic, payload) =>
      broker.publish({ topic, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: false }),
    eventsEnabled: (type) =>
      options.registry.describeEventConfigurations().eventConfigurations[type]?.Enabled === true,
    ...(options.deliverDocument ? { deliverDocument: options.deliverDocument } : {}),
    ...(options.tags ? { tags: options.tags } : {}),
    onExecutionsCreated: options.onExecutionsCreated,
  };
  const reactions = createReactions(ctx);
  let rollout: Rollout | null = null;
  const service = createJobsService(ctx, reactions, (jobId) => rollout?.kick(jobId));
  const device = createDeviceJobs(ctx, reactions);
  rollout = startRollout(ctx, reactions, {
    db: options.db,
    events: options.events,
    tickMs: cfg.tickMs,
    runsHere: options.runsHere,
  });
  const registration = broker.registerService(jobsMqttService(ctx, device, broker));
  const started = rollout;
  return {
    name: 'jobs',
    service: { service, device, rollout: started, store },
    operations: [...jobsControlOperations(service), ...jobsDataOperations(device, targets, ctx.now)],
    async close() {
      await started.close();
      await registration.unregister();
    },
  };
}
