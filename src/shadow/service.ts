import type { ChangeChannel } from '../events/index.js';
import { Counter, type Logger, type Registry } from '../observability/index.js';
import {
  applyUpdate,
  deleteAcceptedResponse,
  deltaOf,
  deltaResponse,
  documentsResponse,
  emptyDocument,
  getResponse,
  noShadow,
  parseDocument,
  serializeDocument,
  SHADOW_MESSAGES,
  ShadowError,
  stateBytes,
  updateAcceptedResponse,
  type DocumentLimits,
  type ShadowDocument,
  type SimpleRequest,
  type UpdateRequest,
} from './document.js';
import type { ShadowStore, StoredShadow } from './store.js';

/**
 * The shadow service: get, update, delete and list over one store, for MQTT requests and the HTTP data
 * plane alike (reference §8.2, §4).
 *
 * Contract:
 * - Requests for one shadow (thing + name) run one at a time in arrival order (a lane per shadow), so its
 *   versions are assigned, written and announced in order: every message about one shadow is published in
 *   version order (accepted, then delta, then documents), the ordering AWS does not promise.
 * - Writes are optimistic: the store writes only if the version read is still current. When another
 *   process wrote first, the request is re-applied to the fresh document (a request with `version` then
 *   gets 409 as it should); nothing is lost or overwritten.
 * - Every accepted update publishes `/update/accepted`, `/update/delta` (when the delta is not empty and
 *   the update wrote desired or changed the delta) and `/update/documents`; a delete publishes
 *   `/delete/accepted`. MQTT requests also get `/get/accepted` or a `/rejected` document; HTTP callers get
 *   the document or the error as the response only (AWS: REST errors are not published).
 * - After each write a `shadow` change event is published (the fleet index and other processes' caches
 *   re-read).
 * - A deleted shadow keeps its version for `tombstoneMs` (AWS: 48 hours): an update within it continues the
 *   numbering, after it the shadow starts again at version 1.
 */

export interface ShadowLimits extends DocumentLimits {
  /** How long a deleted shadow's version is kept (AWS: 48 h). */
  readonly tombstoneMs: number;
  /** Updates per second per thing before 429 (AWS: 20); 0 disables. */
  readonly maxUpdatesPerSecondPerThing: number;
  /** Requests waiting or running per MQTT connection before 429 (AWS: 10); 0 disables. */
  readonly maxInFlightPerConnection: number;
  /** Parsed documents kept in memory. */
  readonly cacheEntries: number;
}

export const DEFAULT_SHADOW_LIMITS: ShadowLimits = {
  maxStateBytes: 8192,
  maxDepth: 6,
  tombstoneMs: 48 * 3600_000,
  maxUpdatesPerSecondPerThing: 20,
  maxInFlightPerConnection: 10,
  cacheEntries: 50_000,
};

/** Where an answer goes: the broker for MQTT topics (`publish`), nothing else. */
export interface ShadowPublisher {
  publish(topic: string, body: Record<string, unknown>): void;
}

/** One accepted version, for the optional history (kept in the time-series store). */
export interface ShadowVersionRecord {
  readonly thing: string;
  readonly name: string;
  readonly version: number;
  /** Epoch ms. */
  readonly at: number;
  readonly state: ShadowDocument['state'];
  readonly deleted: boolean;
}

export interface ShadowServiceOptions {
  readonly store: ShadowStore;
  readonly publisher: ShadowPublisher;
  readonly events: ChangeChannel;
  readonly limits?: Partial<ShadowLimits>;
  readonly logger: Logger;
  readonly metrics?: Registry;
  /** Every accepted version (history); must not throw. */
  readonly onVersion?: (record: ShadowVersionRecord) => void;
  readonly now?: () => number;
}

/** The topic prefix of a shadow: classic `$aws/things/{t}/shadow`, named `.../shadow/name/{n}`. */
export const shadowTopic = (thing: string, name: string) =>
  name === '' ? `$aws/things/${thing}/shadow` : `$aws/things/${thing}/shadow/name/${name}`;

interface Cached {
  readonly row: StoredShadow;
  /** Parsed document of a live row; null for a tombstone. */
  readonly doc: ShadowDocument | null;
}

export type ShadowOp = 'get' | 'update' | 'delete';

export interface ShadowService {
  readonly limits: ShadowLimits;
  /** The `/get/accepted` document; throws ShadowError (404 when there is no shadow). */
  get(thing: string, name: string, request?: SimpleRequest): Promise<Record<string, unknown>>;
  /** The `/update/accepted` document; publishes accepted, delta, documents. Throws ShadowError. */
  update(thing: string, name: string, request: UpdateRequest): Promise<Record<string, unknown>>;
  /** The `/delete/accepted` document; publishes it. Throws ShadowError (404 when there is no shadow). */
  delete(thing: string, name: string, request?: SimpleRequest): Promise<Record<string, unknown>>;
  /** Names of the thing's named shadows (the classic one is not listed), AWS's paging. */
  listNamed(
    thing: string,
    options: { nextToken?: string; pageSize?: number },
  ): Promise<{ results: string[]; nextToken?: string }>;
  /** Current state of a live shadow, or undefined (fleet index, console). */
  peek(thing: string, name: string): Promise<ShadowDocument | undefined>;
  /** A thing was deleted: its shadows go, tombstones included. */
  deleteThing(thing: string): Promise<void>;
  /**
   * Admission for MQTT requests: true when the connection may start one more (counted until `release`);
   * false (answer 429) when it has `maxInFlightPerConnection` already.
   */
  admit(clientId: string): boolean;
  release(clientId: string): void;
  /** Remove tombstones past `tombstoneMs`. */
  purge(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Re-applies of one request after losing the optimistic write before it fails with 500. A request without
 * `version` must land however often another process wins (AWS: no version, no check), and the process
 * whose write just won answers its next request from its cache, one round trip ahead of the loser, so a
 * loser can lose as many times in a row as the winner has requests queued: the bound is generous, and
 * retries past the first few wait a little (jittered) so they do not hammer the store.
 */
const MAX_CONFLICT_RETRIES = 200;

const conflictPause = (attempt: number) =>
  attempt < 2 ? Promise.resolve() : new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 20)));

export function createShadowService(options: ShadowServiceOptions): ShadowService {
  const limits: ShadowLimits = { ...DEFAULT_SHADOW_LIMITS, ...options.limits };
  const { store, publisher, events } = options;
  const now = options.now ?? Date.now;
  const log = options.logger;
  const cache = new Map<string, Cached>();
  const lanes = new Map<string, Promise<unknown>>();
  const inFlight = new Map<string, number>();
  let rateWindow = 0;
  const rate = new Map<string, number>();
  const requests = new Counter({
    name: 'thingstead_shadow_requests_total',
    help: 'Shadow requests by operation and outcome (accepted, or the rejection code).',
    labelNames: ['op', 'outcome'] as const,
    registers: options.metrics ? [options.metrics] : [],
  });
  const conflicts = new Counter({
    name: 'thingstead_shadow_write_conflicts_total',
    help: 'Optimistic writes that found the shadow changed by another writer and were re-applied.',
    registers: options.metrics ? [options.metrics] : [],
  });

  const keyOf = (thing: string, name: string) => `${thing}\u0000${name}`;

  /** Run `fn` after every earlier request for the same shadow (one lane per shadow). */
  function inLane<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = lanes.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    lanes.set(key, tail);
    void tail.then(() => {
      if (lanes.get(key) === tail) lanes.delete(key);
    });
    return run;
  }

  function remember(key: string, entry: Cached): void {
    cache.delete(key);
    cache.set(key, entry);
    if (cache.size > limits.cacheEntries) cache.delete(cache.keys().next().value!);
  }

  /**
   * Processes share the store (PostgreSQL): a cached copy can be older than another process's write until
   * its `shadow` change event arrives, so reads that answer or refuse a caller (`get`, `delete`, a version
   * check that failed) go to the store (`fresh`); updates may start from the cache, as their conditional
   * write catches a stale copy.
   */
  const shared = events.kind === 'postgres';

  async function read(thing: string, name: string, fresh = false): Promise<Cached | null> {
    const key = keyOf(thing, name);
    const hit = cache.get(key);
    if (hit && !fresh) return hit;
    const row = await store.get(thing, name);
    if (!row) {
      if (hit) cache.delete(key);
      return null;
    }
    if (hit && hit.row.version === row.version && hit.row.updatedAt === row.updatedAt) return hit;
    const entry: Cached = { row, doc: row.document === null ? null : parseDocument(row.document) };
    remember(key, entry);
    return entry;
  }

  /** The live document and the version to continue from (0 for none, or a tombstone past its time). */
  function current(entry: Cached | null, at: number): { doc: ShadowDocument | null; version: number } {
    if (!entry) return { doc: null, version: 0 };
    if (entry.doc) return { doc: entry.doc, version: entry.row.version };
    const expired = entry.row.deletedAt !== null && at - entry.row.deletedAt > limits.tombstoneMs;
    return { doc: null, version: expired ? 0 : entry.row.version - 1 };
  }

  /**
   * The time of a write over `entry`: now, but always later than the write it replaces, so every version of
   * a shadow has its own millisecond in every process (the history keys its points by thing, metric and ms;
   * two versions in one ms would overwrite each other). A conflict re-reads, so the bound holds across
   * processes too.
   */
  const writeTime = (entry: Cached | null) => Math.max(now(), (entry?.row.updatedAt ?? 0) + 1);

  function announce(thing: string, name: string, version: number, deleted: boolean): void {
    events
      .publish({ kind: 'shadow', thing, name, version, ...(deleted ? { deleted: true } : {}) })
      .catch((err: unknown) => log.warn({ err, thing, name }, 'shadow change event failed'));
  }

  function throttle(thing: string, at: number): void {
    if (limits.maxUpdatesPerSecondPerThing <= 0) return;
    const window = Math.floor(at / 1000);
    if (window !== rateWindow) {
      rateWindow = window;
      rate.clear();
    }
    const n = (rate.get(thing) ?? 0) + 1;
    rate.set(thing, n);
    if (n > limits.maxUpdatesPerSecondPerThing) throw new ShadowError(429, SHADOW_MESSAGES.tooManyRequests);
  }

  const counted = async <T>(op: ShadowOp, fn: () => Promise<T>): Promise<T> => {
    try {
      const out = await fn();
      requests.inc({ op, outcome: 'accepted' });
      return out;
    } catch (err) {
      requests.inc({ op, outcome: err instanceof ShadowError ? String(err.code) : '500' });
      if (!(err instanceof ShadowError)) {
        log.error({ err }, 'shadow request failed');
        throw new ShadowError(500, SHADOW_MESSAGES.internal);
      }
      throw err;
    }
  };

  /** Write `row` over `expected`; on a conflict forget the cached copy and report false. */
  async function write(key: string, row: StoredShadow, expected: number | null, doc: ShadowDocument | null) {
    const ok = await store.put(row, expected);
    if (!ok) {
      cache.delete(key);
      conflicts.inc();
      return false;
    }
    remember(key, { row, doc });
    return true;
  }

  const service: ShadowService = {
    limits,

    get: (thing, name, request = {}) =>
      counted('get', () =>
        inLane(keyOf(thing, name), async () => {
          const at = now();
          const { doc, version } = current(await read(thing, name, shared), at);
          if (!doc) throw noShadow(name === '' ? thing : name);
          return getResponse(doc, version, Math.floor(at / 1000), request);
        }),
      ),

    update: (thing, name, request) =>
      counted('update', () => {
        throttle(thing, now());
        const key = keyOf(thing, name);
        return inLane(key, async () => {
          for (let attempt = 0; ; attempt++) {
            let entry = await read(thing, name);
            // A version that differs from a cached copy may be another process's newer one: confirm it.
            if (shared && request.version !== undefined && request.version !== current(entry, now()).version)
              entry = await read(thing, name, true);
            const at = writeTime(entry);
            const sec = Math.floor(at / 1000);
            const { doc: before, version } = current(entry, at);
            if (request.version !== undefined && request.version !== version)
              throw new ShadowError(409, SHADOW_MESSAGES.versionConflict);
            const nextVersion = version + 1;
            const base = before ?? emptyDocument(nextVersion);
            const next = applyUpdate(base, request, nextVersion, sec);
            if (stateBytes(next) > limits.maxStateBytes) throw new ShadowError(413, SHADOW_MESSAGES.tooLarge);
            const row: StoredShadow = {
              thingName: thing,
              shadowName: name,
              version: nextVersion,
              document: serializeDocument(next),
              updatedAt: at,
              deletedAt: null,
            };
            if (!(await write(key, row, entry ? entry.row.version : null, next))) {
              if (attempt >= MAX_CONFLICT_RETRIES) throw new ShadowError(500, SHADOW_MESSAGES.internal);
              await conflictPause(attempt);
              continue;
            }
            const prefix = shadowTopic(thing, name);
            const accepted = updateAcceptedResponse(request, nextVersion, sec);
            publisher.publish(`${prefix}/update/accepted`, accepted);
            const delta = deltaResponse(next, nextVersion, sec, request.clientToken);
            if (delta) {
              const wroteDesired = request.desired !== undefined && request.desired !== null;
              const changed =
                wroteDesired || JSON.stringify(deltaOf(base)) !== JSON.stringify(delta['state']);
              if (changed) publisher.publish(`${prefix}/update/delta`, delta);
            }
            publisher.publish(
              `${prefix}/update/documents`,
              documentsResponse(
                before ? { doc: before, version } : null,
                { doc: next, version: nextVersion },
                sec,
                request.clientToken,
              ),
            );
            announce(thing, name, nextVersion, false);
            options.onVersion?.({ thing, name, version: nextVersion, at, state: next.state, deleted: false });
            return accepted;
          }
        });
      }),

    delete: (thing, name, request = {}) =>
      counted('delete', () => {
        const key = keyOf(thing, name);
        return inLane(key, async () => {
          for (let attempt = 0; ; attempt++) {
            const entry = await read(thing, name, shared);
            const at = writeTime(entry);
            const { doc, version } = current(entry, at);
            if (!doc || !entry) throw noShadow(name === '' ? thing : name);
            // The tombstone's row version is one past the deleted version, so a writer holding a stale
            // copy of the live row (another process, before the change event lands) cannot write over the
            // delete with a conditional put on the old version. `current` reads it back as `version`.
            const row: StoredShadow = {
              thingName: thing,
              shadowName: name,
              version: version + 1,
              document: null,
              updatedAt: at,
              deletedAt: at,
            };
            if (!(await write(key, row, entry.row.version, null))) {
              if (attempt >= MAX_CONFLICT_RETRIES) throw new ShadowError(500, SHADOW_MESSAGES.internal);
              await conflictPause(attempt);
              continue;
            }
            const body = deleteAcceptedResponse(version, Math.floor(at / 1000), request.clientToken);
            publisher.publish(`${shadowTopic(thing, name)}/delete/accepted`, body);
            announce(thing, name, version, true);
            options.onVersion?.({ thing, name, version, at, state: {}, deleted: true });
            return body;
          }
        });
      }),

    async listNamed(thing, { nextToken, pageSize = 25 }) {
      const limit = Math.min(Math.max(pageSize, 1), 100);
      const after = nextToken ? Buffer.from(nextToken, 'base64url').toString('utf8') : '';
      const names = (await store.listNames(thing, { after, limit: limit + 1 })).filter((n) => n !== '');
      const page = names.slice(0, limit);
      const more = names.length > limit;
      return more
        ? { results: page, nextToken: Buffer.from(page[page.length - 1]!, 'utf8').toString('base64url') }
        : { results: page };
    },

    async peek(thing, name) {
      const { doc } = current(await read(thing, name), now());
      return doc ?? undefined;
    },

    async deleteThing(thing) {
      for (const key of [...cache.keys()]) if (key.startsWith(`${thing}\u0000`)) cache.delete(key);
      await store.deleteThing(thing);
    },

    admit(clientId) {
      if (limits.maxInFlightPerConnection <= 0) return true;
      const n = inFlight.get(clientId) ?? 0;
      if (n >= limits.maxInFlightPerConnection) return false;
      inFlight.set(clientId, n + 1);
      return true;
    },

    release(clientId) {
      if (limits.maxInFlightPerConnection <= 0) return;
      const n = (inFlight.get(clientId) ?? 1) - 1;
      if (n <= 0) inFlight.delete(clientId);
      else inFlight.set(clientId, n);
    },

    purge: () => store.purgeTombstones(now() - limits.tombstoneMs),

    async close() {
      await Promise.allSettled([...lanes.values()]);
    },
  };

  // Another process wrote a shadow: forget the cached copy (the next request re-reads it).
  const unsubscribe = events.subscribe(['shadow', 'resync'], (event, origin) => {
    if (event.kind === 'resync') cache.clear();
    else if (event.kind === 'shadow' && origin === 'remote') {
      const key = keyOf(event.thing, event.name);
      const hit = cache.get(key);
      if (hit && hit.row.version <= event.version) cache.delete(key);
    }
  });
  const drain = () => service.close();
  return {
    ...service,
    close: async () => {
      unsubscribe();
      await drain();
    },
  };
}
