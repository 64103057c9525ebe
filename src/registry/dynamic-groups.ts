import { E } from '../errors/index.js';
import { encodeToken, type RegistryContext } from './context.js';
import type { GroupCore } from './groups.js';
import { compileQuery, parseQuery, type IndexedThing, type Predicate } from './search.js';
import type { DynamicQuery, ThingGroupRecord } from './store.js';

/**
 * Dynamic thing groups (AWS IoT Developer Guide "Dynamic thing groups"): a thing group whose members are
 * the things matching a fleet-indexing query. Membership is evaluated against the live fleet index with the
 * group's compiled query (`ctx.dynamic`, recompiled when the group changes), so it is always current as
 * things change; nothing is stored per member. A dynamic group cannot be a parent, and things cannot be
 * added to or removed from it. The rest of a group's life (attributes, versions, events) is shared with
 * static groups in groups.ts.
 */

export const DEFAULT_INDEX = 'AWS_Things';
export const DEFAULT_QUERY_VERSION = '2017-09-30';

/** Compile a dynamic group's query (InvalidQueryException on a bad one). */
export const compileDynamic = (ctx: RegistryContext, queryString: string): Predicate =>
  compileQuery(parseQuery(queryString), ctx.search);

/** The query a new dynamic group is stored with (defaults filled in, not yet checked). */
export function newDynamicQuery(input: {
  queryString: string;
  indexName?: string;
  queryVersion?: string;
}): DynamicQuery {
  return {
    queryString: input.queryString,
    indexName: input.indexName ?? DEFAULT_INDEX,
    queryVersion: input.queryVersion ?? DEFAULT_QUERY_VERSION,
  };
}

/** Refuse an unknown index or a query that does not compile, before anything is stored. */
export function checkDynamicQuery(ctx: RegistryContext, q: DynamicQuery): void {
  if (q.indexName !== DEFAULT_INDEX) throw E.IndexNotFound({ indexName: q.indexName });
  compileDynamic(ctx, q.queryString);
}

/** UpdateDynamicThingGroup: the fields given replace the stored ones, after the same checks. */
export function updatedDynamicQuery(
  ctx: RegistryContext,
  current: DynamicQuery,
  input: { queryString?: string; indexName?: string; queryVersion?: string },
): DynamicQuery {
  if (input.indexName !== undefined && input.indexName !== DEFAULT_INDEX)
    throw E.IndexNotFound({ indexName: input.indexName });
  if (input.queryString !== undefined) compileDynamic(ctx, input.queryString);
  return {
    queryString: input.queryString ?? current.queryString,
    indexName: input.indexName ?? current.indexName,
    queryVersion: input.queryVersion ?? current.queryVersion,
  };
}

/** The dynamic groups a thing of the fleet index is in now, in map order. */
export const dynamicGroupsOf = (ctx: RegistryContext, thing: IndexedThing): string[] =>
  [...ctx.dynamic].filter(([, p]) => p(thing)).map(([g]) => g);

/** One page of a dynamic group's members, from the fleet index. */
export function thingsInDynamicGroup(
  ctx: RegistryContext,
  g: ThingGroupRecord & { dynamic: DynamicQuery },
  after: string | undefined,
  limit: number,
) {
  const predicate = ctx.dynamic.get(g.name) ?? compileDynamic(ctx, g.dynamic.queryString);
  const r = ctx.index.search(predicate, after, limit);
  const last = r.things[r.things.length - 1];
  return {
    things: r.things.map((t) => t.thingName),
    nextToken: r.more && last ? encodeToken(last.thingName) : undefined,
  };
}

/** The dynamic-group operations; describe, list and membership listings are the thing-group ones. */
export function dynamicGroupOps(core: GroupCore) {
  return {
    createDynamicThingGroup: (input: {
      thingGroupName: string;
      queryString: string;
      indexName?: string;
      queryVersion?: string;
      thingGroupProperties?: Parameters<GroupCore['createGroup']>[0]['thingGroupProperties'];
      tags?: Array<{ Key: string; Value?: string }>;
    }) =>
      core.createGroup({
        thingGroupName: input.thingGroupName,
        thingGroupProperties: input.thingGroupProperties,
        tags: input.tags,
        dynamic: {
          queryString: input.queryString,
          indexName: input.indexName,
          queryVersion: input.queryVersion,
        },
      }),
    updateDynamicThingGroup: (input: Parameters<GroupCore['updateGroup']>[0]) =>
      core.updateGroup(input, true),
    deleteDynamicThingGroup: (input: { thingGroupName: string; expectedVersion?: number }) =>
      core.deleteGroup(input, true),
  };
}
