import { z } from 'zod';
import { awsString } from '../api/index.js';
import { E } from '../errors/index.js';
import type { SettingStore } from './store.js';

/**
 * The fleet-indexing configuration (GetIndexingConfiguration / UpdateIndexingConfiguration, shapes from the
 * @aws-sdk/client-iot model; AWS IoT Developer Guide "Managing thing indexing"), kept in the registry
 * settings (`reg_settings`, key `indexingConfiguration`).
 *
 * What it decides in Thingstead: which shadow fields the shadow context puts into the fleet index
 * (`isShadowIndexed`), and the schema DescribeIndex reports. Registry fields (names, types, attributes,
 * groups, connectivity) are always searchable.
 *
 * Default (nothing stored): thingIndexingMode REGISTRY_AND_SHADOW, connectivity STATUS, named shadows ON:
 * Thingstead indexes the classic shadow and every named shadow out of the box, where AWS starts with
 * indexing off. With namedShadowIndexingMode ON, `filter.namedShadowNames` limits the named shadows indexed
 * to those listed; no list (or an empty one) means all of them (AWS indexes only the listed ones).
 *
 * Change: UpdateIndexingConfiguration writes the setting, which publishes a `registrySetting` change event
 * with key `indexingConfiguration` (INDEXING_SETTING_KEY) after the write; the registry's cached copy
 * (`registry.indexingConfiguration()`) is current before any subscriber in this process hears of it, and
 * in other processes the registry re-reads it before later subscribers run (it subscribes first).
 */

export type ThingIndexingMode = 'OFF' | 'REGISTRY' | 'REGISTRY_AND_SHADOW';
export type IndexingFieldType = 'Number' | 'String' | 'Boolean';

export interface IndexingField {
  readonly name: string;
  readonly type?: IndexingFieldType;
}

export interface ThingIndexingConfiguration {
  readonly thingIndexingMode: ThingIndexingMode;
  readonly thingConnectivityIndexingMode: 'OFF' | 'STATUS';
  readonly deviceDefenderIndexingMode: 'OFF' | 'VIOLATIONS';
  readonly namedShadowIndexingMode: 'OFF' | 'ON';
  /** Fields the index knows the type of (computed from the modes; read-only). */
  readonly managedFields: readonly IndexingField[];
  readonly customFields: readonly IndexingField[];
  readonly filter?: {
    readonly namedShadowNames?: readonly string[];
    readonly geoLocations?: ReadonlyArray<{ readonly name?: string; readonly order?: string }>;
    readonly connectivity?: Readonly<Record<string, unknown>>;
  };
}

export interface ThingGroupIndexingConfiguration {
  readonly thingGroupIndexingMode: 'OFF' | 'ON';
  readonly managedFields: readonly IndexingField[];
  readonly customFields: readonly IndexingField[];
}

/** What GetIndexingConfiguration answers, and what `registry.indexingConfiguration()` returns. */
export interface IndexingConfiguration {
  readonly thingIndexingConfiguration: ThingIndexingConfiguration;
  readonly thingGroupIndexingConfiguration: ThingGroupIndexingConfiguration;
}

/** The registry setting the configuration is kept under (the `registrySetting` change event's key). */
export const INDEXING_SETTING_KEY = 'indexingConfiguration';
/** AWS's default quota of named shadows in `filter.namedShadowNames`. */
export const MAX_INDEXED_SHADOW_NAMES = 10;

type Stored = {
  thing: Omit<ThingIndexingConfiguration, 'managedFields'>;
  group: Omit<ThingGroupIndexingConfiguration, 'managedFields'>;
};

const DEFAULT: Stored = {
  thing: {
    thingIndexingMode: 'REGISTRY_AND_SHADOW',
    thingConnectivityIndexingMode: 'STATUS',
    deviceDefenderIndexingMode: 'OFF',
    namedShadowIndexingMode: 'ON',
    customFields: [],
  },
  group: { thingGroupIndexingMode: 'OFF', customFields: [] },
};

const f = (name: string, type: IndexingFieldType): IndexingField => ({ name, type });

function thingManaged(c: Stored['thing']): IndexingField[] {
  if (c.thingIndexingMode === 'OFF') return [];
  const out = [
    f('thingName', 'String'),
    f('thingId', 'String'),
    f('registry.version', 'Number'),
    f('registry.thingTypeName', 'String'),
    f('registry.thingGroupNames', 'String'),
  ];
  if (c.thingIndexingMode === 'REGISTRY_AND_SHADOW')
    out.push(f('shadow.version', 'Number'), f('shadow.hasDelta', 'Boolean'));
  if (c.namedShadowIndexingMode === 'ON')
    out.push(f('shadow.name.*.version', 'Number'), f('shadow.name.*.hasDelta', 'Boolean'));
  if (c.thingConnectivityIndexingMode === 'STATUS')
    out.push(
      f('connectivity.connected', 'Boolean'),
      f('connectivity.timestamp', 'Number'),
      f('connectivity.disconnectReason', 'String'),
    );
  return out;
}

function groupManaged(c: Stored['group']): IndexingField[] {
  if (c.thingGroupIndexingMode === 'OFF') return [];
  return [
    f('thingGroupName', 'String'),
    f('thingGroupId', 'String'),
    f('thingGroupDescription', 'String'),
    f('parentGroupNames', 'String'),
  ];
}

function view(s: Stored): IndexingConfiguration {
  return Object.freeze({
    thingIndexingConfiguration: Object.freeze({ ...s.thing, managedFields: thingManaged(s.thing) }),
    thingGroupIndexingConfiguration: Object.freeze({ ...s.group, managedFields: groupManaged(s.group) }),
  });
}

/**
 * Is this shadow's content indexed under the configuration? `shadowName` undefined or '' is the classic
 * shadow. For the shadow context deciding which `shadow.*` fields to give the fleet index.
 * @example if (isShadowIndexed(registry.indexingConfiguration(), 'config')) provider.update(thing, doc);
 */
export function isShadowIndexed(config: IndexingConfiguration, shadowName?: string): boolean {
  const c = config.thingIndexingConfiguration;
  if (c.thingIndexingMode !== 'REGISTRY_AND_SHADOW') return false;
  if (!shadowName) return true;
  if (c.namedShadowIndexingMode !== 'ON') return false;
  const names = c.filter?.namedShadowNames;
  return !names || names.length === 0 || names.includes(shadowName);
}

const enumOf = <T extends string>(values: readonly [T, ...T[]]) =>
  z.enum(values, { error: `Member must satisfy enum value set: [${values.join(', ')}]` });
const field = z.object({
  name: awsString({ min: 1, max: 128 }).optional(),
  type: enumOf(['Number', 'String', 'Boolean']).optional(),
});
const fields = z.array(field).optional();

/** UpdateIndexingConfiguration's input (model shapes; omitted modes are OFF, as the whole part is replaced). */
export const indexingInput = z.object({
  thingIndexingConfiguration: z
    .object({
      thingIndexingMode: enumOf(['OFF', 'REGISTRY', 'REGISTRY_AND_SHADOW']),
      thingConnectivityIndexingMode: enumOf(['OFF', 'STATUS']).optional(),
      deviceDefenderIndexingMode: enumOf(['OFF', 'VIOLATIONS']).optional(),
      namedShadowIndexingMode: enumOf(['OFF', 'ON']).optional(),
      managedFields: fields,
      customFields: fields,
      filter: z
        .object({
          namedShadowNames: z
            .array(
              awsString({ min: 1, max: 64, pattern: /^[$a-zA-Z0-9:_-]+$/, patternText: '[$a-zA-Z0-9:_-]+' }),
            )
            .max(MAX_INDEXED_SHADOW_NAMES, {
              error: `Member must have length less than or equal to ${MAX_INDEXED_SHADOW_NAMES}`,
            })
            .optional(),
          geoLocations: z
            .array(
              z.object({
                name: awsString({ max: 128 }).optional(),
                order: enumOf(['LatLon', 'LonLat']).optional(),
              }),
            )
            .optional(),
          connectivity: z.record(z.string(), z.unknown()).optional(),
        })
        .optional(),
    })
    .optional(),
  thingGroupIndexingConfiguration: z
    .object({
      thingGroupIndexingMode: enumOf(['OFF', 'ON']),
      managedFields: fields,
      customFields: fields,
    })
    .optional(),
});

type Input = z.infer<typeof indexingInput>;

/** The configuration as stored, cached in memory; `reload` re-reads it (another process changed it). */
export interface Indexing {
  current(): IndexingConfiguration;
  update(input: Input): Promise<void>;
  reload(): Promise<void>;
}

export async function createIndexing(store: SettingStore): Promise<Indexing> {
  const read = async (): Promise<Stored> => {
    const raw = await store.getSetting(INDEXING_SETTING_KEY);
    return raw ? (JSON.parse(raw) as Stored) : DEFAULT;
  };
  let stored = await read();
  let cached = view(stored);
  return {
    current: () => cached,
    async reload() {
      stored = await read();
      cached = view(stored);
    },
    async update(input) {
      let thing = stored.thing;
      const t = input.thingIndexingConfiguration;
      if (t) {
        const mode = t.thingIndexingMode;
        const next = {
          thingIndexingMode: mode,
          thingConnectivityIndexingMode: t.thingConnectivityIndexingMode ?? 'OFF',
          deviceDefenderIndexingMode: t.deviceDefenderIndexingMode ?? 'OFF',
          namedShadowIndexingMode: t.namedShadowIndexingMode ?? 'OFF',
        } as const;
        // AWS: nothing can be indexed about things while thing indexing is off; named shadows need shadows.
        if (mode === 'OFF')
          for (const [member, value] of Object.entries(next))
            if (member !== 'thingIndexingMode' && value !== 'OFF')
              throw E.IndexingModeConflict({ member, value, mode });
        if (next.namedShadowIndexingMode === 'ON' && mode !== 'REGISTRY_AND_SHADOW')
          throw E.IndexingModeConflict({ member: 'namedShadowIndexingMode', value: 'ON', mode });
        thing = {
          ...next,
          customFields: (t.customFields ?? []) as IndexingField[],
          ...(t.filter ? { filter: t.filter } : {}),
        };
      }
      const g = input.thingGroupIndexingConfiguration;
      const group = g
        ? {
            thingGroupIndexingMode: g.thingGroupIndexingMode,
            customFields: (g.customFields ?? []) as IndexingField[],
          }
        : stored.group;
      const next: Stored = { thing, group };
      await store.setSetting(INDEXING_SETTING_KEY, JSON.stringify(next));
      stored = next;
      cached = view(next);
    },
  };
}

/** DescribeIndex's `schema` for the configuration (AWS's IndexSchema values). */
export function indexSchema(config: IndexingConfiguration): string {
  const c = config.thingIndexingConfiguration;
  const shadow = c.thingIndexingMode === 'REGISTRY_AND_SHADOW' ? '_AND_SHADOW' : '';
  const connectivity = c.thingConnectivityIndexingMode === 'STATUS' ? '_AND_CONNECTIVITY_STATUS' : '';
  return `REGISTRY${shadow}${connectivity}`;
}
