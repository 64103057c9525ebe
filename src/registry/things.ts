import { randomUUID } from 'node:crypto';
import { E } from '../errors/index.js';
import {
  LIMITS,
  applyAttributes,
  arn,
  decodeToken,
  encodeToken,
  indexed,
  page,
  sameAttributes,
  type RegistryContext,
} from './context.js';
import { dynamicGroupsOf } from './dynamic-groups.js';
import { compileQuery, parseQuery, type IndexedThing } from './search.js';
import type { ThingRecord } from './store.js';
import { usableType } from './thing-types.js';

/**
 * Things and fleet search (thing types are in thing-types.ts, principals in principals.ts). Inputs are the
 * AWS request shapes already validated by the route schemas in api.ts; outputs are the AWS response shapes
 * (reference §3.1). Semantics follow reference §3.12: creates are idempotent for the same configuration,
 * deletes of missing things succeed, `expectedVersion` mismatches are VersionConflictException.
 */

export function thingOps(ctx: RegistryContext) {
  const { store, index, events } = ctx;

  const thingEvent = (t: ThingRecord, operation: 'CREATED' | 'UPDATED' | 'DELETED') =>
    events.emit('THING', `$aws/events/thing/${t.name}/${operation.toLowerCase()}`, {
      operation,
      thingId: t.id,
      thingName: t.name,
      versionNumber: t.version,
      thingTypeName: t.typeName,
      attributes: t.attributes,
    });

  const typeAssociationEvent = (t: ThingRecord, typeName: string, operation: 'ADDED' | 'REMOVED') =>
    events.emit(
      'THING_TYPE_ASSOCIATION',
      `$aws/events/thingTypeAssociation/thing/${t.name}/thingType/${typeName}/${operation.toLowerCase()}`,
      { operation, thingId: t.id, thingName: t.name, thingTypeName: typeName },
    );

  function checkAttributeCount(attrs: Record<string, string>, thingName: string) {
    const n = Object.keys(attrs).length;
    if (n > LIMITS.attributesPerThing)
      throw E.ThingAttributesLimit({ thingName, count: n, max: LIMITS.attributesPerThing });
  }

  const describeThing = (t: ThingRecord) => ({
    defaultClientId: t.name,
    thingName: t.name,
    thingId: t.id,
    thingArn: arn(ctx, 'thing', t.name),
    thingTypeName: t.typeName ?? undefined,
    attributes: t.attributes,
    version: t.version,
    billingGroupName: t.billingGroup ?? undefined,
  });

  const thingDocument = (t: IndexedThing) => {
    const dynamicGroups = dynamicGroupsOf(ctx, t);
    // Members other contexts add through their field providers (the shadow context's `shadow`).
    const extra: Record<string, string> = {};
    for (const p of ctx.search.providers ?? []) Object.assign(extra, p.document?.(t));
    return {
      thingName: t.thingName,
      thingId: t.thingId,
      thingTypeName: t.thingTypeName ?? undefined,
      thingGroupNames: [...t.groups, ...dynamicGroups].sort(),
      attributes: t.attributes,
      ...extra,
      connectivity: { connected: ctx.search.isConnected(t.thingName) },
    };
  };

  return {
    describeThingRecord: (t: ThingRecord) => describeThing(t),

    async createThing(input: {
      thingName: string;
      thingTypeName?: string;
      attributePayload?: { attributes?: Record<string, string> };
      billingGroupName?: string;
    }) {
      const attributes = applyAttributes(
        {},
        { attributes: input.attributePayload?.attributes ?? {}, merge: false },
      );
      checkAttributeCount(attributes, input.thingName);
      const existing = await store.getThing(input.thingName);
      const sameAs = (t: ThingRecord) =>
        (t.typeName ?? undefined) === input.thingTypeName &&
        sameAttributes(t.attributes, attributes) &&
        (input.billingGroupName === undefined || t.billingGroup === input.billingGroupName);
      const conflict = (t: ThingRecord) =>
        E.ThingConflict(
          { thingName: t.name },
          {
            resourceId: t.id,
            resourceArn: arn(ctx, 'thing', t.name),
          },
        );
      if (existing) {
        if (sameAs(existing))
          return {
            thingName: existing.name,
            thingArn: arn(ctx, 'thing', existing.name),
            thingId: existing.id,
          };
        throw conflict(existing);
      }
      if (input.thingTypeName !== undefined) await usableType(ctx, input.thingTypeName);
      if (input.billingGroupName !== undefined && !(await store.getBillingGroup(input.billingGroupName)))
        throw E.BillingGroupNotFound({ billingGroupName: input.billingGroupName });
      const thing: ThingRecord = {
        name: input.thingName,
        id: randomUUID(),
        typeName: input.thingTypeName ?? null,
        attributes,
        version: 1,
        billingGroup: input.billingGroupName ?? null,
        createdAt: Date.now(),
      };
      if (!(await store.insertThing(thing))) {
        // Lost a race with a concurrent create of the same name: answer as if it had come first.
        const winner = await store.getThing(input.thingName);
        if (winner && sameAs(winner))
          return { thingName: winner.name, thingArn: arn(ctx, 'thing', winner.name), thingId: winner.id };
        throw conflict(winner ?? thing);
      }
      index.upsert(indexed(thing, []));
      thingEvent(thing, 'CREATED');
      if (thing.typeName) typeAssociationEvent(thing, thing.typeName, 'ADDED');
      return { thingName: thing.name, thingArn: arn(ctx, 'thing', thing.name), thingId: thing.id };
    },

    async describeThing(input: { thingName: string }) {
      const t = await store.getThing(input.thingName);
      if (!t) throw E.ThingNotFound({ thingName: input.thingName });
      return describeThing(t);
    },

    async listThings(input: {
      nextToken?: string;
      maxResults?: number;
      attributeName?: string;
      attributeValue?: string;
      thingTypeName?: string;
      usePrefixAttributeValue?: boolean;
    }) {
      if (input.attributeValue !== undefined && input.attributeName === undefined)
        throw E.ListThingsAttributeValue();
      if (input.usePrefixAttributeValue && input.attributeValue === undefined) throw E.ListThingsPrefix();
      const limit = input.maxResults ?? 50;
      const rows = await store.listThings({
        after: decodeToken(input.nextToken),
        limit: limit + 1,
        typeName: input.thingTypeName,
        attributeName: input.attributeName,
        attributeValue: input.attributeValue,
        prefix: input.usePrefixAttributeValue,
      });
      const p = page(rows, limit, (t) => t.name);
      return {
        things: p.items.map((t) => ({
          thingName: t.name,
          thingTypeName: t.typeName ?? undefined,
          thingArn: arn(ctx, 'thing', t.name),
          attributes: t.attributes,
          version: t.version,
        })),
        nextToken: p.nextToken,
      };
    },

    async updateThing(input: {
      thingName: string;
      thingTypeName?: string;
      attributePayload?: { attributes?: Record<string, string>; merge?: boolean };
      expectedVersion?: number;
      removeThingType?: boolean;
    }) {
      if (input.removeThingType && input.thingTypeName !== undefined) throw E.ThingTypeOrRemove();
      if (input.thingTypeName !== undefined) await usableType(ctx, input.thingTypeName);
      // Optimistic concurrency: retry on a concurrent change unless the caller pinned expectedVersion.
      for (let attempt = 0; ; attempt++) {
        const current = await store.getThing(input.thingName);
        if (!current) throw E.ThingNotFound({ thingName: input.thingName });
        if (input.expectedVersion !== undefined && input.expectedVersion !== current.version)
          throw E.ThingVersionMismatch({
            thingName: input.thingName,
            expected: input.expectedVersion,
            current: current.version,
          });
        const attributes = applyAttributes(current.attributes, input.attributePayload);
        checkAttributeCount(attributes, input.thingName);
        const typeName = input.removeThingType ? null : (input.thingTypeName ?? current.typeName);
        const next: ThingRecord = { ...current, attributes, typeName, version: current.version + 1 };
        if (await store.updateThing(next, current.version)) {
          index.upsert({ ...indexed(next, index.get(next.name)?.groups ?? []) });
          thingEvent(next, 'UPDATED');
          if (current.typeName !== next.typeName) {
            if (current.typeName) typeAssociationEvent(next, current.typeName, 'REMOVED');
            if (next.typeName) typeAssociationEvent(next, next.typeName, 'ADDED');
          }
          return {};
        }
        if (input.expectedVersion !== undefined || attempt >= 5)
          throw E.ThingChanged({ thingName: input.thingName });
      }
    },

    async deleteThing(input: { thingName: string; expectedVersion?: number }) {
      const current = await store.getThing(input.thingName);
      if (!current) return {}; // reference §3.12: deleting a missing thing succeeds
      if (input.expectedVersion !== undefined && input.expectedVersion !== current.version)
        throw E.ThingVersionMismatch({
          thingName: input.thingName,
          expected: input.expectedVersion,
          current: current.version,
        });
      const principals = await store.principalsOfThing(input.thingName, { limit: 1 });
      if (principals.length) throw E.ThingHasPrincipals({ thingName: input.thingName });
      if (!(await store.deleteThing(input.thingName, current.version)))
        throw E.ThingChanged({ thingName: input.thingName });
      index.remove(input.thingName);
      thingEvent(current, 'DELETED');
      return {};
    },

    // --- fleet search ------------------------------------------------------------------------------
    searchThings(input: { queryString: string; nextToken?: string; maxResults?: number }) {
      const predicate = compileQuery(parseQuery(input.queryString), ctx.search);
      const limit = input.maxResults ?? 100;
      const result = index.search(predicate, decodeToken(input.nextToken), limit);
      const last = result.things[result.things.length - 1];
      return {
        things: result.things.map(thingDocument),
        nextToken: result.more && last ? encodeToken(last.thingName) : undefined,
      };
    },
  };
}
