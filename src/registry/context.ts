import { E } from '../errors/index.js';
import type { ResourceTags } from '../tags/index.js';
import type { RegistryEvents } from './events.js';
import type { FleetIndex, Predicate, SearchContext } from './search.js';
import type { Attributes, RegistryStore, ThingRecord } from './store.js';

/**
 * State shared by the registry's parts (things, thing types, groups, principals, billing groups): one per
 * platform. Internal to the context.
 */
export interface RegistryContext {
  readonly store: RegistryStore;
  readonly index: FleetIndex;
  readonly events: RegistryEvents;
  readonly search: SearchContext;
  readonly region: string;
  readonly accountId: string;
  /** Compiled queries of dynamic groups by group name (recompiled when a group changes). */
  readonly dynamic: Map<string, Predicate>;
  /** Tags of thing types, thing groups and billing groups (src/tags): added on create, removed on delete. */
  readonly tags: ResourceTags | undefined;
}

export const arn = (ctx: RegistryContext, type: string, name: string) =>
  `arn:aws:iot:${ctx.region}:${ctx.accountId}:${type}/${name}`;

/** Accept a name or an ARN of the given resource type (AddThingToThingGroup, reference §3.12). */
export function nameFromArnOrName(value: string | undefined, type: string): string | undefined {
  if (value === undefined) return undefined;
  const m = /^arn:aws[a-z-]*:iot:[^:]*:[^:]*:([a-z]+)\/(.+)$/.exec(value);
  if (!m) return value;
  if (m[1] !== type) throw E.ArnWrongType({ arn: value, type });
  return m[2];
}

/** Opaque keyset pagination token (reference §3.9): base64url of the last key returned. */
export function encodeToken(last: string): string {
  return Buffer.from(JSON.stringify({ k: last })).toString('base64url');
}

export function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof v?.k === 'string') return v.k as string;
  } catch {
    /* fall through */
  }
  throw E.NextTokenInvalid({ token: token.slice(0, 64) });
}

/** One page of a keyset listing: `items` has at most `limit`; `nextToken` when there may be more. */
export function page<T>(rows: T[], limit: number, key: (t: T) => string): { items: T[]; nextToken?: string } {
  if (rows.length > limit) {
    const items = rows.slice(0, limit);
    return { items, nextToken: encodeToken(key(items[items.length - 1]!)) };
  }
  return { items: rows };
}

/**
 * Apply an AttributePayload (reference §3.8): merge=false replaces all attributes, merge=true merges, and an
 * empty value removes that attribute in both modes.
 */
export function applyAttributes(
  current: Attributes,
  payload: { attributes?: Record<string, string>; merge?: boolean } | undefined,
): Attributes {
  if (!payload?.attributes) return current;
  const next: Attributes = payload.merge ? { ...current } : {};
  for (const [k, v] of Object.entries(payload.attributes)) {
    // Attributes are a flat map of strings (reference §3.11): a nested value is refused here, without
    // walking it, whatever the caller validated before.
    if (typeof v !== 'string')
      throw E.MemberType({ member: `attributePayload.attributes.${k}`, expected: 'a string' });
    if (v === '') delete next[k];
    else next[k] = v;
  }
  return next;
}

export const sameAttributes = (a: Attributes, b: Attributes) => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
};

export const indexed = (t: ThingRecord, groups: string[]) => ({
  thingName: t.name,
  thingId: t.id,
  thingTypeName: t.typeName,
  attributes: t.attributes,
  version: t.version,
  groups,
});

/** AWS limits the registry enforces (reference §11, §3.11). */
export const LIMITS = {
  attributesPerThing: 50,
  attributesPerGroup: 50,
  searchableAttributesPerType: 3,
  groupDepth: 7,
  childGroups: 100,
  groupsPerThing: 10,
} as const;
