import { randomUUID } from 'node:crypto';
import { E } from '../errors/index.js';
import { arn, decodeToken, page, type RegistryContext } from './context.js';
import type { ThingTypeRecord } from './store.js';

/**
 * Thing types (reference §3.1): create (idempotent for the same properties), describe, list, update,
 * deprecate and undeprecate, delete (only when deprecated and no thing uses it). A deprecated type cannot
 * be given to a thing (`usableType`).
 */

/** A type a thing may be given: it must exist and not be deprecated. */
export async function usableType(ctx: RegistryContext, typeName: string): Promise<ThingTypeRecord> {
  const type = await ctx.store.getType(typeName);
  if (!type) throw E.ThingTypeNotFound({ thingTypeName: typeName });
  if (type.deprecated) throw E.ThingTypeDeprecated({ thingTypeName: typeName });
  return type;
}

export function thingTypeOps(ctx: RegistryContext) {
  const { store, events } = ctx;

  const typeEvent = (t: ThingTypeRecord, operation: 'CREATED' | 'UPDATED' | 'DELETED') =>
    events.emit('THING_TYPE', `$aws/events/thingType/${t.name}/${operation.toLowerCase()}`, {
      operation,
      thingTypeId: t.id,
      thingTypeName: t.name,
      isDeprecated: t.deprecated,
      deprecationDate: t.deprecationDate,
      searchableAttributes: t.properties.searchableAttributes ?? [],
      description: t.properties.thingTypeDescription ?? null,
    });

  return {
    async createThingType(input: {
      thingTypeName: string;
      thingTypeProperties?: Record<string, unknown>;
      tags?: Array<{ Key: string; Value?: string }>;
    }) {
      const properties = input.thingTypeProperties ?? {};
      const existing = await store.getType(input.thingTypeName);
      const out = (t: ThingTypeRecord) => ({
        thingTypeName: t.name,
        thingTypeArn: arn(ctx, 'thingtype', t.name),
        thingTypeId: t.id,
      });
      if (existing) {
        if (JSON.stringify(existing.properties) === JSON.stringify(properties)) return out(existing);
        throw E.ThingTypeConflict(
          { thingTypeName: input.thingTypeName },
          { resourceId: existing.id, resourceArn: arn(ctx, 'thingtype', existing.name) },
        );
      }
      ctx.tags?.check(input.tags);
      const type: ThingTypeRecord = {
        name: input.thingTypeName,
        id: randomUUID(),
        properties,
        deprecated: false,
        deprecationDate: null,
        createdAt: Date.now(),
        tags: input.tags ?? [],
      };
      if (!(await store.insertType(type)))
        throw E.ThingTypeAlreadyExists({ thingTypeName: input.thingTypeName });
      await ctx.tags?.add(arn(ctx, 'thingtype', type.name), input.tags);
      typeEvent(type, 'CREATED');
      return out(type);
    },

    async describeThingType(input: { thingTypeName: string }) {
      const t = await store.getType(input.thingTypeName);
      if (!t) throw E.ThingTypeNotFound({ thingTypeName: input.thingTypeName });
      return {
        thingTypeName: t.name,
        thingTypeId: t.id,
        thingTypeArn: arn(ctx, 'thingtype', t.name),
        thingTypeProperties: t.properties,
        thingTypeMetadata: typeMetadata(t),
      };
    },

    async listThingTypes(input: { nextToken?: string; maxResults?: number; thingTypeName?: string }) {
      const limit = input.maxResults ?? 50;
      const rows = await store.listTypes({
        after: decodeToken(input.nextToken),
        limit: limit + 1,
        name: input.thingTypeName,
      });
      const p = page(rows, limit, (t) => t.name);
      return {
        thingTypes: p.items.map((t) => ({
          thingTypeName: t.name,
          thingTypeArn: arn(ctx, 'thingtype', t.name),
          thingTypeProperties: t.properties,
          thingTypeMetadata: typeMetadata(t),
        })),
        nextToken: p.nextToken,
      };
    },

    async updateThingType(input: { thingTypeName: string; thingTypeProperties?: Record<string, unknown> }) {
      const t = await store.getType(input.thingTypeName);
      if (!t) throw E.ThingTypeNotFound({ thingTypeName: input.thingTypeName });
      const next = { ...t, properties: { ...t.properties, ...(input.thingTypeProperties ?? {}) } };
      await store.updateType(next);
      typeEvent(next, 'UPDATED');
      return {};
    },

    async deprecateThingType(input: { thingTypeName: string; undoDeprecate?: boolean }) {
      const t = await store.getType(input.thingTypeName);
      if (!t) throw E.ThingTypeNotFound({ thingTypeName: input.thingTypeName });
      const next: ThingTypeRecord = input.undoDeprecate
        ? { ...t, deprecated: false, deprecationDate: null }
        : { ...t, deprecated: true, deprecationDate: t.deprecationDate ?? Date.now() };
      await store.updateType(next);
      typeEvent(next, 'UPDATED');
      return {};
    },

    async deleteThingType(input: { thingTypeName: string }) {
      const t = await store.getType(input.thingTypeName);
      if (!t) throw E.ThingTypeNotFound({ thingTypeName: input.thingTypeName });
      if (!t.deprecated) throw E.ThingTypeNotDeprecated({ thingTypeName: t.name });
      const n = await store.countThingsOfType(t.name);
      if (n > 0) throw E.ThingTypeInUse({ thingTypeName: t.name, count: n });
      await store.deleteType(t.name);
      await ctx.tags?.removeAll(arn(ctx, 'thingtype', t.name));
      typeEvent(t, 'DELETED');
      return {};
    },
  };
}

function typeMetadata(t: ThingTypeRecord) {
  return {
    deprecated: t.deprecated,
    deprecationDate: t.deprecationDate === null ? undefined : new Date(t.deprecationDate),
    creationDate: new Date(t.createdAt),
  };
}
