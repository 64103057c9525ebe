import { join } from 'node:path';
import type { StartedContext } from '../api/index.js';
import type { Config } from '../config/index.js';
import type { ChangeChannel } from '../events/index.js';
import { signCsr, type CertificateService, type SigningCa } from '../identity/index.js';
import type { Broker } from '../mqtt/index.js';
import type { JsonLimits } from '../json/index.js';
import type { Logger, Registry } from '../observability/index.js';
import type { PolicyService } from '../policy/index.js';
import type { Database } from '../store/index.js';
import type { ResourceTags } from '../tags/index.js';
import { provisioningOperations } from './api.js';
import { createApplier, type Applier, type ApplyPorts } from './apply.js';
import { createRegistrationTasks, type RegistrationTasks } from './bulk.js';
import { createDeviceCertificates, type DeviceCertificates } from './certificates.js';
import { openFlowsStore, type FlowsStore } from './flows-store.js';
import { hookUrlProblem } from './hook.js';
import { certificateFacts, startJitp } from './jitp.js';
import { provisioningMqttService } from './mqtt.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import {
  createTemplatesService,
  provisioningTemplateOperations,
  type TemplatesService,
} from './templates-api.js';
import { createTemplatesStore } from './templates-store.js';
import { createOwnershipTokens } from './tokens.js';
import { createTraceLog, type TraceLog } from './trace.js';

export interface ProvisioningOptions {
  readonly db: Database;
  readonly events: ChangeChannel;
  /** Serves the MQTT topics (registerService) and answers the requester only (deliverTo). */
  readonly broker: Pick<Broker, 'registerService' | 'deliverTo'>;
  readonly registry: ApplyPorts['registry'];
  readonly certificates: CertificateService;
  readonly policies: PolicyService;
  /** The platform CA: it signs the certificates provisioning makes. */
  readonly ca: SigningCa;
  readonly logger: Logger;
  readonly metrics?: Registry | undefined;
  readonly config: Config['provisioning'];
  /** Limits on devices' JSON request payloads (limits.maxJsonDepth, limits.maxPayloadBytes). */
  readonly json?: JsonLimits | undefined;
  readonly region: string;
  readonly accountId: string;
  readonly dataDir: string;
  /** Base URL of the HTTP API (report links), known once it listens. */
  readonly publicBase: () => string;
  readonly tags?: ResourceTags | undefined;
  readonly now?: () => number;
  /** Tests: called after each write of an apply (inject a failure or a crash between two writes). */
  readonly afterApplyStep?: (step: string) => void | Promise<void>;
  /** Cluster mode: the periodic sweep runs only on the node holding `provisioning.sweep`. */
  readonly runsHere?: ((task: string) => boolean) | undefined;
}

/** The provisioning context as other code (and tests) see it. */
export interface Provisioning {
  readonly templates: TemplatesService;
  readonly pipeline: Pipeline;
  readonly traces: TraceLog;
  readonly tasks: RegistrationTasks;
  readonly certificates: DeviceCertificates;
  readonly applier: Applier;
  readonly store: FlowsStore;
  /**
   * Run the cleanup now: lapsed registrations undone or finished, expired tokens and their certificates
   * removed, expired claim certificates made INACTIVE.
   */
  sweep(): Promise<SweepReport>;
}

export interface SweepReport {
  readonly rolledBack: number;
  readonly rolledForward: number;
  readonly expiredTokens: number;
  readonly certificatesRemoved: number;
  /** Claim certificates (CreateProvisioningClaim) past their expiry, made INACTIVE. */
  readonly claimsDeactivated: number;
  readonly tasksResumed: number;
}

const SWEEP_LOCK = 'thingstead-provisioning-sweep';

const durationText = (ms: number) =>
  ms % 3_600_000 === 0
    ? `${ms / 3_600_000} hour${ms === 3_600_000 ? '' : 's'}`
    : ms % 60_000 === 0
      ? `${ms / 60_000} minutes`
      : `${ms} ms`;

/**
 * Start the provisioning context (reference §3.6, §8.4): the templates (part A: templates-api.ts), the
 * MQTT service on `$aws/certificates/...` and `$aws/provisioning-templates/...`, the pipeline every flow
 * uses, JITP, bulk registration tasks, traces, and the sweep (expired ownership tokens, lapsed
 * registrations, lapsed tasks), which runs on one process per cluster (a PostgreSQL advisory lock).
 * Starts after the broker, the registry, identity and policy.
 * @example const p = await startProvisioning({ db, events, broker, registry, certificates, policies, ca, logger, config: config.provisioning, region, accountId, dataDir, publicBase });
 */
export async function startProvisioning(options: ProvisioningOptions): Promise<StartedContext<Provisioning>> {
  const { db, events, broker, registry, certificates, policies, ca, logger, config: c } = options;
  const now = options.now ?? Date.now;
  const store = await openFlowsStore(db);
  const templateStore = await createTemplatesStore(db, {
    region: options.region,
    accountId: options.accountId,
  });
  const templates = createTemplatesService({
    store: templateStore,
    region: options.region,
    accountId: options.accountId,
    ...(options.tags ? { tags: options.tags } : {}),
    hookProblem: (targetArn) => hookUrlProblem(targetArn, c.allowPlainHttpHooks),
    usedBy: async (templateName) => {
      let marker: string | undefined;
      do {
        const page = await certificates.listCas({ marker, pageSize: 250 });
        const ca = page.items.find((r) => r.registrationConfig?.templateName === templateName);
        if (ca) return ca.certificateId;
        marker = page.nextMarker;
      } while (marker);
      return null;
    },
    now,
  });
  const traces = createTraceLog({
    store,
    logger,
    metrics: options.metrics,
    ringSize: c.traceRing,
    storedMax: c.traceStored,
    now,
  });
  const tokens = createOwnershipTokens({ store, ttlMs: () => c.tokenTtlMs, leaseMs: c.recoveryLeaseMs, now });
  const applier = createApplier({
    ports: { registry, certificates, policies },
    store,
    leaseMs: c.recoveryLeaseMs,
    spendToken: (hash) => store.spendToken(hash, now()),
    releaseToken: (hash) => store.releaseToken(hash),
    signCsr: (csr) => signCsr(ca, csr),
    onUndoError: (err, action) => logger.warn({ err, action }, 'provisioning undo step failed'),
    ...(options.afterApplyStep ? { afterStep: options.afterApplyStep } : {}),
    now,
  });
  const pipeline = createPipeline({
    templates: templateStore,
    tokens,
    applier,
    traces,
    certificateFacts: (id, withSubject) => certificateFacts(certificates, id, withSubject),
    hook: { timeoutMs: c.hookTimeoutMs, allowPlainHttp: c.allowPlainHttpHooks },
    tokenTtlText: durationText(c.tokenTtlMs),
    onInternalError: (err) => logger.warn({ err }, 'provisioning attempt failed on an internal error'),
  });
  const deviceCertificates = createDeviceCertificates({
    certificates,
    policies,
    ca,
    tokens,
    claims: store,
    keyType: c.keyType,
    claimTtlMs: c.claimTtlMs,
    region: options.region,
    accountId: options.accountId,
    now,
  });
  const tasks = createRegistrationTasks({
    store,
    pipeline,
    logger,
    bulkInputDir: c.bulkInputDir ?? join(options.dataDir, 'bulk'),
    concurrency: c.bulkConcurrency,
    maxInputBytes: c.bulkMaxInputBytes,
    fetchTimeoutMs: c.bulkFetchTimeoutMs,
    leaseMs: c.recoveryLeaseMs,
    publicBase: options.publicBase,
    now,
  });
  const registration = broker.registerService(
    provisioningMqttService({
      broker,
      pipeline,
      certificates: deviceCertificates,
      traces,
      logger,
      queue: { maxItems: c.queueSize, concurrency: c.concurrency },
      json: options.json,
    }),
  );
  const jitp = startJitp({
    events,
    certificates,
    pipeline,
    logger,
    metrics: options.metrics,
    maxQueued: c.queueSize,
  });

  /** Expired unused tokens: the token goes, and its certificate if still PENDING_ACTIVATION and unattached. */
  async function expireTokens(): Promise<{ expiredTokens: number; certificatesRemoved: number }> {
    let expiredTokens = 0;
    let certificatesRemoved = 0;
    for (;;) {
      const rows = await store.expiredTokens(now(), 500);
      for (const t of rows) {
        const record = await certificates.describe(t.certificateId).catch(() => undefined);
        if (record?.status === 'PENDING_ACTIVATION') {
          // Refused (kept) while a thing or a policy holds it: then it is somebody's, not an orphan.
          const removed = await certificates.delete(t.certificateId).then(
            () => true,
            () => false,
          );
          if (removed) certificatesRemoved++;
        }
        await store.deleteToken(t.tokenHash);
        expiredTokens++;
      }
      if (rows.length < 500) break;
    }
    await store.purgeSpentTokens(now() - Math.max(c.tokenTtlMs, 3_600_000));
    return { expiredTokens, certificatesRemoved };
  }

  /**
   * Expired claim certificates: made INACTIVE (their connections are closed by the certificate change
   * event), so a leaked claim stops working even where its X.509 expiry is not checked, and forgotten. A
   * claim already deleted or revoked by an operator is only forgotten.
   */
  async function expireClaims(): Promise<number> {
    let claimsDeactivated = 0;
    for (;;) {
      const rows = await store.expiredClaims(now(), 500);
      for (const claim of rows) {
        const record = await certificates.describe(claim.certificateId).catch(() => undefined);
        if (record?.status === 'ACTIVE') {
          await certificates.updateStatus(claim.certificateId, 'INACTIVE');
          claimsDeactivated++;
        }
        await store.deleteClaim(claim.certificateId);
      }
      if (rows.length < 500) break;
    }
    return claimsDeactivated;
  }

  async function sweepHere(): Promise<SweepReport> {
    const recovered = await applier.recover();
    const expired = await expireTokens();
    const claimsDeactivated = await expireClaims();
    // A dead process's task is resumed only once its cut registrations were undone or finished: a line
    // re-run while its old attempt is still open could race that attempt's recovery.
    const tasksResumed = await tasks.resumeLapsed(
      async (taskId) => (await applier.pendingElsewhere(`bulk:${taskId}`)) === 0,
    );
    return { ...recovered, ...expired, claimsDeactivated, tasksResumed };
  }

  const nothing: SweepReport = {
    rolledBack: 0,
    rolledForward: 0,
    expiredTokens: 0,
    certificatesRemoved: 0,
    claimsDeactivated: 0,
    tasksResumed: 0,
  };
  /** Once per cluster: on PostgreSQL only the holder of the advisory lock sweeps. */
  async function sweep(): Promise<SweepReport> {
    if (db.kind === 'sqlite') return sweepHere();
    const client = await db.raw.connect();
    try {
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1 || current_schema())) AS ok',
        [SWEEP_LOCK],
      );
      if (!rows[0]?.ok) return nothing;
      try {
        return await sweepHere();
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1 || current_schema()))', [SWEEP_LOCK]);
      }
    } finally {
      client.release();
    }
  }

  let sweeping: Promise<unknown> | null = null;
  const tick = () => {
    if (options.runsHere?.('provisioning.sweep') === false) return;
    sweeping ??= sweep()
      .catch((err: unknown) => logger.warn({ err }, 'provisioning sweep failed'))
      .finally(() => {
        sweeping = null;
      });
  };
  const timer = setInterval(tick, c.sweepIntervalMs);
  timer.unref();
  tick(); // at start: finish or undo what a crashed process left

  return {
    name: 'provisioning',
    service: {
      templates,
      pipeline,
      traces,
      tasks,
      certificates: deviceCertificates,
      applier,
      store,
      sweep: async () => {
        await sweeping;
        return sweep();
      },
    },
    operations: [
      ...provisioningTemplateOperations(templates),
      ...provisioningOperations({
        pipeline,
        templates: templateStore,
        claims: deviceCertificates,
        tasks,
        traces,
      }),
    ],
    async close() {
      clearInterval(timer);
      await sweeping;
      await registration.unregister();
      await jitp.close();
      await tasks.close();
      await traces.close();
    },
  };
}
