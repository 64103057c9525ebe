import { randomBytes } from 'node:crypto';
import { ThingsteadError } from '../errors/index.js';
import type { Database } from '../store/index.js';
import { arn, indexed, type RegistryContext } from './context.js';
import { createRegistryEvents, type PublishFn } from './events.js';
import { DEFAULT_INDEX, groupOps } from './groups.js';
import { FleetIndex, compileQuery, parseQuery, type FieldProvider } from './search.js';
import { createRegistryStore, type RegistryStore } from './store.js';
import { thingOps } from './things.js';

export interface RegistryOptions {
  /** The platform database (SQLite or PostgreSQL); or pass `store` directly. */
  readonly db?: Database;
  readonly store?: RegistryStore;
  readonly region: string;
  readonly accountId: string;
  /** The broker's live connection state for `connectivity.connected` (client id = thing name). */
  readonly isConnected?: (thingName: string) => boolean;
  /** Publishes registry events (`$aws/events/...`); the broker's publish. */
  readonly publish?: PublishFn;
  /** Host name DescribeEndpoint returns for an endpoint type (bare host, no scheme or port). */
  readonly endpointAddress?: (endpointType: string) => string;
  /** Extra search fields (e.g. `shadow.reported.*` from the shadow context). */
  readonly fieldProviders?: readonly FieldProvider[];
  readonly onError?: (err: unknown) => void;
  /**
   * PostgreSQL only: how often to apply other nodes' changes from the change feed to this node's fleet
   * index (default 1000 ms; 0 disables the timer, `syncNow()` still works).
   */
  readonly syncIntervalMs?: number;
}

const ENDPOINT_TYPES = ['iot:Data', 'iot:Data-ATS', 'iot:CredentialProvider', 'iot:Jobs'];

/**
 * The device registry: things, types, static and dynamic groups, billing groups, principals, fleet search,
 * registry events, DescribeEndpoint and GetRegistrationCode. Loads the fleet index from the store at start.
 * @example const registry = await createRegistry({ db, region: 'us-east-1', accountId: '000000000000' });
 */
export async function createRegistry(options: RegistryOptions) {
  const store = options.store ?? (await createRegistryStore(options.db!));
  const events = await createRegistryEvents({
    store,
    accountId: options.accountId,
    publish: options.publish,
    onError: options.onError,
  });
  const search = {
    isConnected: options.isConnected ?? (() => false),
    providers: options.fieldProviders ?? [],
  };
  const ctx: RegistryContext = {
    store,
    index: new FleetIndex(),
    events,
    search,
    region: options.region,
    accountId: options.accountId,
    dynamic: new Map(),
  };

  /** Rebuild the fleet index and dynamic-group predicates from the store. */
  async function reload() {
    const [things, memberships, groups] = await Promise.all([
      store.allThings(),
      store.allMemberships(),
      store.allGroups(),
    ]);
    const byThing = new Map<string, string[]>();
    for (const m of memberships) byThing.set(m.thing, [...(byThing.get(m.thing) ?? []), m.group]);
    ctx.index.load(things.map((t) => indexed(t, (byThing.get(t.name) ?? []).sort())));
    ctx.dynamic.clear();
    for (const g of groups) {
      if (!g.dynamic) continue;
      try {
        ctx.dynamic.set(g.name, compileQuery(parseQuery(g.dynamic.queryString), search));
      } catch (err) {
        options.onError?.(err);
      }
    }
  }
  // Change feed (PostgreSQL): remember where the feed stood before loading, so nothing between is lost.
  let lastSeq = await store.latestChange();
  await reload();

  /** Feed sequence numbers not yet seen (a concurrent transaction may commit a lower seq later). */
  const gaps = new Map<number, number>();
  let syncing: Promise<void> | null = null;
  const applyThing = async (name: string) => {
    const t = await store.getThing(name);
    if (!t) ctx.index.remove(name);
    else ctx.index.upsert(indexed(t, await store.groupsOfThing(name)));
  };
  const applyGroup = async (name: string) => {
    const g = await store.getGroup(name);
    if (!g) {
      ctx.dynamic.delete(name);
      ctx.index.dropGroup(name);
    } else if (g.dynamic) ctx.dynamic.set(name, compileQuery(parseQuery(g.dynamic.queryString), search));
    else ctx.dynamic.delete(name);
  };
  /** Apply other nodes' registry changes to this node's index (idempotent for our own). */
  function syncNow(): Promise<void> {
    syncing ??= (async () => {
      try {
        const now = Date.now();
        for (const [seq, since] of gaps) if (now - since > 10_000) gaps.delete(seq);
        const from = Math.min(lastSeq, ...gaps.keys());
        const changes = (await store.changesSince(from, 5000)).filter(
          (c) => c.seq > lastSeq || gaps.has(c.seq),
        );
        const seenThings = new Set<string>();
        const seenGroups = new Set<string>();
        for (const c of changes) {
          gaps.delete(c.seq);
          if (c.seq > lastSeq) {
            for (let missing = lastSeq + 1; missing < c.seq; missing++) gaps.set(missing, now);
            lastSeq = c.seq;
          }
          if (c.kind === 'thing' && !seenThings.has(c.name)) {
            seenThings.add(c.name);
            await applyThing(c.name);
          } else if (c.kind === 'group' && !seenGroups.has(c.name)) {
            seenGroups.add(c.name);
            await applyGroup(c.name);
          } else if (c.kind === 'setting') await events.reload();
        }
      } finally {
        syncing = null;
      }
    })();
    return syncing;
  }
  const isPostgres = options.db?.kind === 'postgres';
  const interval = options.syncIntervalMs ?? 1000;
  let prunedAt = Date.now();
  const timer =
    isPostgres && interval > 0
      ? setInterval(() => {
          syncNow()
            .then(async () => {
              if (Date.now() - prunedAt > 10 * 60_000) {
                prunedAt = Date.now();
                await store.pruneChanges(60 * 60_000);
              }
            })
            .catch((err: unknown) => options.onError?.(err));
        }, interval)
      : null;
  timer?.unref();

  const things = thingOps(ctx);
  const groups = groupOps(ctx);

  return {
    ...things,
    ...groups,
    store,
    /** The in-memory fleet index (read-only use by other contexts). */
    index: ctx.index,
    reload,
    /** Apply other nodes' changes now (PostgreSQL change feed); the timer does this every second. */
    syncNow,
    /** Stop the change-feed timer. */
    async close() {
      if (timer) clearInterval(timer);
      await syncing;
    },
    arn: (type: string, name: string) => arn(ctx, type, name),

    searchIndex(input: { queryString: string; indexName?: string; nextToken?: string; maxResults?: number }) {
      const indexName = input.indexName ?? DEFAULT_INDEX;
      if (indexName !== DEFAULT_INDEX)
        throw new ThingsteadError(
          'ResourceNotFound',
          `Index ${indexName} cannot be found; the thing index is ${DEFAULT_INDEX}.`,
        );
      return things.searchThings(input);
    },

    describeIndex(input: { indexName: string }) {
      if (input.indexName !== DEFAULT_INDEX)
        throw new ThingsteadError('ResourceNotFound', `Index ${input.indexName} cannot be found.`);
      return { indexName: DEFAULT_INDEX, indexStatus: 'ACTIVE', schema: 'REGISTRY_AND_CONNECTIVITY_STATUS' };
    },

    listIndices() {
      return { indexNames: [DEFAULT_INDEX] };
    },

    getIndexingConfiguration() {
      return {
        thingIndexingConfiguration: {
          thingIndexingMode: 'REGISTRY',
          thingConnectivityIndexingMode: 'STATUS',
        },
        thingGroupIndexingConfiguration: { thingGroupIndexingMode: 'OFF' },
      };
    },

    describeEndpoint(input: { endpointType?: string }) {
      const type = input.endpointType ?? 'iot:Data';
      if (!ENDPOINT_TYPES.includes(type))
        throw new ThingsteadError(
          'InvalidRequest',
          `Endpoint type ${type} is not valid; use one of ${ENDPOINT_TYPES.join(', ')}.`,
        );
      return { endpointAddress: options.endpointAddress?.(type) ?? 'localhost' };
    },

    /** Created once, then always the same (reference §3.12). */
    async getRegistrationCode() {
      let code = await store.getSetting('registrationCode');
      if (!code) {
        await store.setSetting('registrationCode', randomBytes(32).toString('hex'));
        code = (await store.getSetting('registrationCode'))!;
      }
      return { registrationCode: code };
    },

    describeEventConfigurations() {
      return events.describe();
    },

    async updateEventConfigurations(input: { eventConfigurations?: Record<string, { Enabled?: boolean }> }) {
      await events.update(input.eventConfigurations ?? {});
      return {};
    },
  };
}

export type ThingRegistry = Awaited<ReturnType<typeof createRegistry>>;
