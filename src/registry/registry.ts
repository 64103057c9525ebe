import { randomBytes } from 'node:crypto';
import { E } from '../errors/index.js';
import { createLocalChannel, type ChangeChannel } from '../events/index.js';
import type { Database } from '../store/index.js';
import type { ResourceTags } from '../tags/index.js';
import { withChangeEvents } from './changes.js';
import { arn, indexed, type RegistryContext } from './context.js';
import { createRegistryEvents, type PublishFn } from './events.js';
import { billingGroupOps } from './billing-groups.js';
import { DEFAULT_INDEX, dynamicGroupOps } from './dynamic-groups.js';
import { groupCore, groupOps } from './groups.js';
import { FleetIndex, compileQuery, parseQuery, type FieldProvider } from './search.js';
import { createRegistryStore, type RegistryStore } from './store.js';
import { thingOps } from './things.js';
import { thingTypeOps } from './thing-types.js';
import { principalOps } from './principals.js';
import { createIndexing, indexSchema, type IndexingConfiguration } from './indexing.js';

export interface RegistryOptions {
  /** The platform database (SQLite or PostgreSQL); or pass `store` directly. */
  readonly db?: Database;
  readonly store?: RegistryStore;
  readonly region: string;
  readonly accountId: string;
  /**
   * Change events: the registry publishes one after each committed write, and applies other processes'
   * events to its in-memory fleet index (default: in-process only).
   */
  readonly events?: ChangeChannel;
  /**
   * Live connection state for `connectivity.connected` (client id = thing name). Default: learnt from the
   * broker's lifecycle events through `reservedTopics` (DESIGN.md: the broker calls its services).
   */
  readonly isConnected?: (thingName: string) => boolean;
  /** Publishes registry events (`$aws/events/...`); default: to the subscribers of `onPublish`. */
  readonly publish?: PublishFn;
  /** Host name DescribeEndpoint returns for an endpoint type (bare host, no scheme or port). */
  readonly endpointAddress?: (endpointType: string) => string;
  /** Extra search fields (e.g. `shadow.reported.*` from the shadow context). */
  readonly fieldProviders?: readonly FieldProvider[];
  /** Where the tags given at create time are kept (src/tags); without it they are not readable back. */
  readonly tags?: ResourceTags;
  readonly onError?: (err: unknown) => void;
}

const ENDPOINT_TYPES = ['iot:Data', 'iot:Data-ATS', 'iot:CredentialProvider', 'iot:Jobs'];
/** AWS lifecycle events the broker publishes (reference §8.5); the registry keeps connectivity from them. */
const PRESENCE = /^\$aws\/events\/presence\/(connected|disconnected)\/(.+)$/;

/**
 * The device registry: things, types, static and dynamic groups, billing groups, principals, fleet search,
 * registry events, DescribeEndpoint and GetRegistrationCode. Loads the fleet index from the store at start.
 *
 * Towards the broker it is a service: `reservedTopics` (lifecycle events it reads connectivity from) and
 * `onPublish` (the `$aws/events/...` messages it emits), so it is started before the broker, which needs
 * none of it to start.
 * @example const registry = await createRegistry({ db, region: 'us-east-1', accountId: '000000000000' });
 */
export async function createRegistry(options: RegistryOptions) {
  const channel = options.events ?? createLocalChannel();
  const onError = options.onError ?? (() => undefined);
  const changes = withChangeEvents(
    options.store ?? (await createRegistryStore(options.db!)),
    channel,
    onError,
  );
  const store = changes.store;
  const publishers = new Set<PublishFn>();
  if (options.publish) publishers.add(options.publish);
  const events = await createRegistryEvents({
    store,
    accountId: options.accountId,
    publish: (topic, payload) => {
      for (const p of publishers) p(topic, payload);
    },
    onError: options.onError,
  });
  const indexing = await createIndexing(store);
  const connected = new Set<string>();
  const search = {
    isConnected: options.isConnected ?? ((name: string) => connected.has(name)),
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
    tags: options.tags,
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
  await reload();

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
  // Another process's writes: re-read what they name into this process's index (ours are applied inline).
  // Subscribed before any other context, so a subscriber that reads the registry for the same event (live
  // authorization) reads it after the index caught up.
  const unsubscribe = channel.subscribe(
    ['thing', 'membership', 'thingGroup', 'registrySetting'],
    async (e, origin) => {
      if (origin !== 'remote') return;
      if (e.kind === 'thing') await applyThing(e.name);
      else if (e.kind === 'membership') await applyThing(e.thing);
      else if (e.kind === 'thingGroup') await applyGroup(e.name);
      else if (e.kind === 'registrySetting') await Promise.all([events.reload(), indexing.reload()]);
      else if (e.kind === 'resync') {
        await reload();
        await Promise.all([events.reload(), indexing.reload()]);
      }
    },
  );

  const things = thingOps(ctx);
  const groups = groupCore(ctx);

  return {
    ...things,
    ...thingTypeOps(ctx),
    ...principalOps(ctx),
    ...groupOps(ctx, groups),
    ...dynamicGroupOps(groups),
    ...billingGroupOps(ctx),
    store,
    /** The in-memory fleet index (read-only use by other contexts). */
    index: ctx.index,
    reload,
    /** Resolves when the change events of every write so far were applied in this process and sent. */
    settled: () => changes.settled(),
    /** MQTT topics the broker should hand to the registry (lifecycle events: connectivity). */
    reservedTopics: [
      {
        filter: '$aws/events/presence/+/+',
        handler(message: { topic: string }) {
          const m = PRESENCE.exec(message.topic);
          if (m?.[1] === 'connected') connected.add(m[2]!);
          else if (m) connected.delete(m[2]!);
        },
      },
    ] as const,
    /** Receive the registry events to publish on MQTT (`$aws/events/...`); returns an unsubscribe. */
    onPublish(publish: PublishFn): () => void {
      publishers.add(publish);
      return () => publishers.delete(publish);
    },
    /** Stop applying other processes' changes; waits for pending change events. */
    async close() {
      unsubscribe();
      await changes.settled();
    },
    arn: (type: string, name: string) => arn(ctx, type, name),

    searchIndex(input: { queryString: string; indexName?: string; nextToken?: string; maxResults?: number }) {
      const indexName = input.indexName ?? DEFAULT_INDEX;
      if (indexName !== DEFAULT_INDEX) throw E.SearchIndexNotFound({ indexName, thingIndex: DEFAULT_INDEX });
      return things.searchThings(input);
    },

    describeIndex(input: { indexName: string }) {
      if (input.indexName !== DEFAULT_INDEX) throw E.IndexNotFound({ indexName: input.indexName });
      return { indexName: DEFAULT_INDEX, indexStatus: 'ACTIVE', schema: indexSchema(indexing.current()) };
    },

    listIndices() {
      return { indexNames: [DEFAULT_INDEX] };
    },

    /**
     * The fleet-indexing configuration (indexing.ts): sync, from memory, kept current by change events. The
     * shadow context reads it to decide which shadow fields are indexed (`isShadowIndexed`).
     * @example if (isShadowIndexed(registry.indexingConfiguration(), shadowName)) ...
     */
    indexingConfiguration(): IndexingConfiguration {
      return indexing.current();
    },

    getIndexingConfiguration(): IndexingConfiguration {
      return indexing.current();
    },

    /** Replaces the parts given; publishes a `registrySetting` event (key `indexingConfiguration`). */
    async updateIndexingConfiguration(input: Parameters<typeof indexing.update>[0]) {
      await indexing.update(input);
      return {};
    },

    describeEndpoint(input: { endpointType?: string }) {
      const type = input.endpointType ?? 'iot:Data';
      if (!ENDPOINT_TYPES.includes(type))
        throw E.EndpointType({ endpointType: type, endpointTypes: ENDPOINT_TYPES });
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
