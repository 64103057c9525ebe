import type { ChangeChannel } from '../events/index.js';
import type { FieldProvider, FieldValue } from '../registry/index.js';
import { deltaOf, type Json, type ShadowSections } from './document.js';
import type { ShadowStore } from './store.js';

/**
 * Shadow fields for fleet search (AWS fleet indexing with shadows): `shadow.reported.<path>`,
 * `shadow.desired.<path>`, `shadow.delta.<path>`, `shadow.hasDelta`, `shadow.version`, and for named
 * shadows `shadow.name.<name>.reported.<path>` (and desired, delta, hasDelta, version).
 *
 * `document` adds AWS's `shadow` member to each SearchIndex result (ThingDocument.shadow, a JSON string):
 * the classic shadow's `desired`, `reported`, `version` and `hasDelta`, and the indexed named shadows the
 * same way under `name.<shadowName>` (metadata is not kept in the index, so it is not shown).
 *
 * Holds the state of every shadow in memory (what a query evaluates, synchronously, per thing), loaded from
 * the store at start and kept current by `shadow` change events from any process. `indexNamed` decides
 * which named shadows are indexed (AWS's namedShadowIndexingMode and filter); the classic shadow always is
 * while shadow indexing is on (`enabled`).
 */

interface Entry {
  readonly version: number;
  readonly state: ShadowSections;
}

export interface ShadowFleetIndex extends FieldProvider {
  /** Shadows indexed (classic and named). */
  readonly size: number;
  close(): void;
}

const FIELD =
  /^shadow\.(?:name\.([$a-zA-Z0-9:_-]{1,64})\.)?(reported|desired|delta|hasDelta|version)(?:\.(.+))?$/;

function lookup(root: Json | undefined, path: readonly string[]): Json | undefined {
  let node: Json | undefined = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = node[key];
  }
  return node;
}

function asField(value: Json | undefined): FieldValue {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.filter((v) => v !== null && typeof v !== 'object').map(String);
  if (typeof value === 'object') return undefined;
  return value;
}

export async function createShadowFleetIndex(options: {
  readonly store: ShadowStore;
  readonly events: ChangeChannel;
  /** Current state of a live shadow (undefined when deleted). */
  readonly peek: (thing: string, name: string) => Promise<{ state: ShadowSections } | undefined>;
  /** Shadow indexing on (REGISTRY_AND_SHADOW). */
  readonly enabled: () => boolean;
  /** Whether a named shadow is indexed. */
  readonly indexNamed: (name: string) => boolean;
  readonly onError: (err: unknown) => void;
}): Promise<ShadowFleetIndex> {
  const byThing = new Map<string, Map<string, Entry>>();
  let size = 0;
  const put = (thing: string, name: string, entry: Entry | undefined) => {
    let shadows = byThing.get(thing);
    const had = shadows?.has(name) ?? false;
    if (!entry) {
      if (had) {
        shadows!.delete(name);
        size--;
        if (shadows!.size === 0) byThing.delete(thing);
      }
      return;
    }
    if (!shadows) byThing.set(thing, (shadows = new Map()));
    shadows.set(name, entry);
    if (!had) size++;
  };

  async function load() {
    byThing.clear();
    size = 0;
    let after: { thingName: string; shadowName: string } | undefined;
    for (;;) {
      const rows = await options.store.scan({ ...(after ? { after } : {}), limit: 1000 });
      for (const row of rows)
        if (row.document !== null)
          put(row.thingName, row.shadowName, {
            version: row.version,
            state: (JSON.parse(row.document) as { state: ShadowSections }).state,
          });
      if (rows.length < 1000) break;
      const last = rows[rows.length - 1]!;
      after = { thingName: last.thingName, shadowName: last.shadowName };
    }
  }
  await load();

  const unsubscribe = options.events.subscribe(['shadow', 'thing', 'resync'], async (event) => {
    try {
      if (event.kind === 'resync') return await load();
      if (event.kind === 'thing') {
        if (event.deleted)
          for (const name of [...(byThing.get(event.name)?.keys() ?? [])]) put(event.name, name, undefined);
        return;
      }
      const known = byThing.get(event.thing)?.get(event.name);
      if (known && known.version > event.version) return;
      if (event.deleted) return put(event.thing, event.name, undefined);
      const doc = await options.peek(event.thing, event.name);
      put(event.thing, event.name, doc ? { version: event.version, state: doc.state } : undefined);
    } catch (err) {
      options.onError(err);
    }
  });

  return {
    get size() {
      return size;
    },
    handles: (field) => FIELD.test(field),
    value(thing, field) {
      if (!options.enabled()) return undefined;
      const m = FIELD.exec(field);
      if (!m) return undefined;
      const name = m[1] ?? '';
      if (name !== '' && !options.indexNamed(name)) return undefined;
      const entry = byThing.get(thing.thingName)?.get(name);
      if (!entry) return m[2] === 'hasDelta' ? false : undefined;
      const path = m[3] ? m[3].split('.') : [];
      switch (m[2]) {
        case 'version':
          return entry.version;
        case 'hasDelta':
          return deltaOf(entry) !== undefined;
        case 'delta':
          return asField(lookup(deltaOf(entry), path));
        default:
          return asField(lookup(entry.state[m[2] as 'reported' | 'desired'], path));
      }
    },
    document(thing) {
      if (!options.enabled()) return undefined;
      const shadows = byThing.get(thing.thingName);
      if (!shadows) return undefined;
      const classic = shadows.get('');
      const out: Record<string, unknown> = classic ? summary(classic) : {};
      for (const [name, entry] of shadows)
        if (name !== '' && options.indexNamed(name))
          ((out['name'] ??= {}) as Record<string, unknown>)[name] = summary(entry);
      return Object.keys(out).length ? { shadow: JSON.stringify(out) } : undefined;
    },
    close: unsubscribe,
  };
}

/** One shadow as SearchIndex shows it: its state sections, version and whether it has a delta. */
function summary(entry: Entry): Record<string, unknown> {
  return {
    ...(entry.state.desired ? { desired: entry.state.desired } : {}),
    ...(entry.state.reported ? { reported: entry.state.reported } : {}),
    version: entry.version,
    hasDelta: deltaOf(entry) !== undefined,
  };
}
