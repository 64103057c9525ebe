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
  await reload();

  const things = thingOps(ctx);
  const groups = groupOps(ctx);

  return {
    ...things,
    ...groups,
    store,
    /** The in-memory fleet index (read-only use by other contexts). */
    index: ctx.index,
    reload,
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
