/**
 * The metering context as a module: the meter (handed to the broker), the ledger's flush loop, the quota
 * limits (store + change events), the billing-group directory, the throttle counters and usage events,
 * and the usage/quota API operations.
 *
 * Flush contract: every `flushMs` (and at every UTC hour boundary, and on `flush()`), the meter is drained
 * and the rows are added to `usage_hourly` in one transaction; a failed flush keeps the rows in memory and
 * adds them with the next one (counted: thingstead_metering_flush_failures_total). `close()` flushes last.
 */
import type { StartedContext } from '../api/index.js';
import type { AwsOperation } from '../api/index.js';
import type { Config } from '../config/index.js';
import type { ChangeChannel } from '../events/index.js';
import { Counter, Gauge, rateLimitedLog, type Logger, type Registry } from '../observability/index.js';
import type { ThingRegistry } from '../registry/index.js';
import type { Database } from '../store/index.js';
import { meteringOperations, meterOperations } from './api.js';
import { Meter } from './meter.js';
import { LIMITS, type LimitName, type Limits, type Throttle } from './quotas.js';
import { createMeteringStore, type MeteringStore, type UsageQuery } from './store.js';
import { HOUR_MS, units5k, type Unit } from './units.js';
import type { UsageRow } from './meter.js';

export interface MeteringOptions {
  readonly db: Database;
  readonly events?: ChangeChannel | undefined;
  /** Billing groups of things (and their changes through `thing` events). */
  readonly registry: Pick<ThingRegistry, 'describeThing' | 'listBillingGroups' | 'listThingsInBillingGroup'>;
  readonly logger: Logger;
  readonly metrics?: Registry | undefined;
  readonly config: Config['metering'];
  /** Clock (epoch ms); tests inject one to hold connections for known minutes. */
  readonly now?: (() => number) | undefined;
}

/** The metering context as other code sees it. */
export interface Metering {
  /** The broker's UsageMeter; null when metering.enabled is false. */
  readonly meter: Meter | null;
  readonly store: MeteringStore;
  /** Count usage counted off the broker (rules, jobs, API). No-op when metering is off. */
  add(thing: string, unit: Unit, amount: number): void;
  /** Drain and write the ledger now; resolves with the rows written. */
  flush(): Promise<number>;
  query(q: UsageQuery): Promise<UsageRow[]>;
  /** Explicit limits of every scope, and the thing defaults. */
  quotas(): {
    things: Record<string, Partial<Limits>>;
    groups: Record<string, Partial<Limits>>;
    defaults: Limits;
  };
  /** Set (number) or remove (null) limits of a thing or billing group; every node applies it at once. */
  setQuotas(scope: 'thing' | 'billingGroup', name: string, limits: Partial<Limits>): Promise<void>;
  /** Receive each throttle as a usage event (the platform publishes it on MQTT). Returns an unsubscribe. */
  onThrottle(listener: (t: Throttle) => void): () => void;
  /**
   * Publish each throttle as a usage event on MQTT (`$thingstead/events/quota/{thing}/throttled`, JSON of
   * the Throttle), at most one per thing and limit per second (the rest are counted only). Returns a stop.
   */
  publishUsageEvents(publish: (topic: string, payload: Buffer) => void): () => void;
  /** Rule matches and job executions, for the rules and jobs contexts' hooks. */
  ruleMatched(thing: string, bytes: number, actions: number): void;
  /** Wrap AWS operations so registry and shadow calls are metered and rate-limited per thing. */
  meterOperations(operations: readonly AwsOperation[]): AwsOperation[];
}

/**
 * Start metering: migrate the store, load the limits and billing groups, start the flush loop.
 * @example const metering = await startMetering({ db, events, registry, logger, metrics, config: config.metering });
 */
export async function startMetering(options: MeteringOptions): Promise<StartedContext<Metering>> {
  const { config, logger } = options;
  const now = options.now ?? Date.now;
  const store = await createMeteringStore(options.db);
  const explicit = { things: new Map<string, Partial<Limits>>(), groups: new Map<string, Partial<Limits>>() };
  const loadQuotas = async () => {
    const things = new Map<string, Partial<Limits>>();
    const groups = new Map<string, Partial<Limits>>();
    for (const q of await store.quotas()) {
      const into = q.kind === 'thing' ? things : groups;
      const limits = (into.get(q.name) ?? {}) as Record<LimitName, number>;
      limits[q.limit] = q.value;
      into.set(q.name, limits);
    }
    explicit.things = things;
    explicit.groups = groups;
  };
  await loadQuotas();

  // thing -> billing group, complete from the start (every group's members), kept current by `thing` events.
  const groupOf = new Map<string, string>();
  if (config.enabled) await loadGroups(options.registry, groupOf);

  const throttleListeners = new Set<(t: Throttle) => void>();
  const registers = options.metrics ? [options.metrics] : [];
  const throttled = new Counter({
    name: 'thingstead_quota_throttled_total',
    help: 'Requests refused by a quota, by limit, scope (thing or billingGroup) and action (refused, disconnected).',
    labelNames: ['limit', 'scope', 'action'],
    registers,
  });
  const flushFailures = new Counter({
    name: 'thingstead_metering_flush_failures_total',
    help: 'Ledger flushes that failed (the rows are kept and written with the next flush).',
    registers,
  });
  const flushedRows = new Counter({
    name: 'thingstead_metering_rows_flushed_total',
    help: 'Ledger rows added to usage_hourly.',
    registers,
  });
  const warn = rateLimitedLog(logger);

  const meter = config.enabled
    ? new Meter({
        now,
        groupOf: (thing) => groupOf.get(thing) ?? null,
        explicit: () => explicit,
        thingDefaults: config.thingDefaults,
        burstSeconds: config.burstSeconds,
        onThrottle(t) {
          throttled.inc({ limit: t.limit, scope: t.scope, action: t.action });
          for (const l of throttleListeners) l(t);
        },
      })
    : null;
  new Gauge({
    name: 'thingstead_metering_ledger_rows',
    help: 'Ledger rows drained in memory and not yet written.',
    registers,
    collect() {
      this.set(meter?.ledgerSize ?? 0);
    },
  });

  // One flush at a time, in call order; a call during one runs after it (its counts are newer).
  let chain: Promise<unknown> = Promise.resolve();
  const flushOnce = async (): Promise<number> => {
    if (!meter) return 0;
    meter.drain();
    const rows = meter.takeRows();
    try {
      await store.add(rows);
      flushedRows.inc(rows.length);
      return rows.length;
    } catch (err) {
      meter.restore(rows);
      flushFailures.inc();
      warn({ err, rows: rows.length }, 'usage ledger flush failed; rows kept for the next flush');
      throw err;
    }
  };
  const flush = (): Promise<number> => {
    const run = chain.then(flushOnce);
    chain = run.catch(() => undefined);
    return run;
  };
  const background = (): void => void flush().catch(() => undefined);
  const timer = meter ? setInterval(background, config.flushMs) : null;
  timer?.unref();
  // A drain at each UTC hour boundary puts counts in the hour they happened in.
  let hourTimer: NodeJS.Timeout | null = null;
  const scheduleHour = () => {
    const wait = HOUR_MS - (now() % HOUR_MS) + 5;
    hourTimer = setTimeout(() => {
      background();
      scheduleHour();
    }, wait);
    hourTimer.unref();
  };
  if (meter) scheduleHour();

  const unsubscribe = options.events?.subscribe(['quota', 'thing'], async (event) => {
    if (event.kind === 'quota' || event.kind === 'resync') {
      await loadQuotas();
      if (event.kind === 'resync' && config.enabled) await loadGroups(options.registry, groupOf);
      meter?.refresh();
      return;
    }
    if (event.kind === 'thing' && meter) {
      if (event.deleted) groupOf.delete(event.name);
      else {
        const t = await options.registry.describeThing({ thingName: event.name }).catch(() => null);
        const group = (t as { billingGroupName?: string } | null)?.billingGroupName;
        if (group) groupOf.set(event.name, group);
        else groupOf.delete(event.name);
      }
      meter.refresh(event.name);
    }
  });

  const service: Metering = {
    meter,
    store,
    add: (thing, unit, amount) => meter?.add(thing, unit, amount),
    flush,
    query: (q) => store.query(q),
    quotas: () => ({
      things: Object.fromEntries(explicit.things),
      groups: Object.fromEntries(explicit.groups),
      defaults: config.thingDefaults,
    }),
    async setQuotas(scope, name, limits) {
      await store.setQuotas(scope, name, limits, now());
      if (options.events) await options.events.publish({ kind: 'quota', scope, name });
      else {
        await loadQuotas();
        meter?.refresh();
      }
    },
    onThrottle(listener) {
      throttleListeners.add(listener);
      return () => throttleListeners.delete(listener);
    },
    publishUsageEvents(publish) {
      const last = new Map<string, number>();
      return service.onThrottle((t) => {
        if (
          t.thing.length === 0 ||
          t.thing.length > 128 ||
          /[#+/]/.test(t.thing) ||
          t.thing.includes('\u0000')
        )
          return;
        const key = `${t.thing}\u0000${t.limit}`;
        const second = Math.floor(t.at / 1000);
        if (last.get(key) === second) return;
        if (last.size > 10_000) last.clear();
        last.set(key, second);
        try {
          publish(`$thingstead/events/quota/${t.thing}/throttled`, Buffer.from(JSON.stringify(t)));
        } catch (err) {
          warn({ err, thing: t.thing }, 'usage event could not be published');
        }
      });
    },
    ruleMatched(thing, bytes, actions) {
      if (!meter) return;
      const u = units5k(bytes);
      meter.add(thing, 'rules_triggered', u);
      if (actions > 0) meter.add(thing, 'actions_executed', u * actions);
    },
    meterOperations: (ops) => (meter ? meterOperations(ops, meter) : [...ops]),
  };
  return {
    name: 'metering',
    service,
    operations: meteringOperations(service),
    async close() {
      unsubscribe?.();
      if (timer) clearInterval(timer);
      if (hourTimer) clearTimeout(hourTimer);
      await flush().catch((err: unknown) => logger.warn({ err }, 'last usage ledger flush failed'));
    },
  };
}

/** Every billing group's members (paged through the registry). */
async function loadGroups(registry: MeteringOptions['registry'], into: Map<string, string>): Promise<void> {
  into.clear();
  let token: string | undefined;
  do {
    const page = await registry.listBillingGroups({
      maxResults: 250,
      ...(token ? { nextToken: token } : {}),
    });
    for (const g of page.billingGroups) {
      let members: string | undefined;
      do {
        const m = await registry.listThingsInBillingGroup({
          billingGroupName: g.groupName,
          maxResults: 250,
          ...(members ? { nextToken: members } : {}),
        });
        for (const thing of m.things) into.set(thing, g.groupName);
        members = m.nextToken ?? undefined;
      } while (members);
    }
    token = page.nextToken ?? undefined;
  } while (token);
}

export { LIMITS };
