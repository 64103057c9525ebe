/**
 * The shadow document engine: AWS IoT Device Shadow semantics (reference §8.2) as pure functions over
 * plain JSON, no I/O. The service (service.ts) reads a stored document, applies a request here and writes
 * the result back under optimistic concurrency.
 *
 * Stored document (the store's `document` text): `{ state: {desired?, reported?}, metadata: {desired?,
 * reported?}, createdVersion, removed? }`. Metadata mirrors the state; each leaf (scalar or array: arrays
 * are replaced whole and are leaves) is `{ timestamp, version }`: the epoch second AWS shows and the shadow
 * version that last wrote it, which is Thingstead's own (stripped from every AWS-shaped response). The
 * per-leaf versions and the `removed` tombstones (paths set to null, with the version that removed them)
 * serve the `sinceVersion` extension of `get`: the changes after a version the caller already holds.
 *
 * Semantics (AWS's):
 * - Partial update: only the given fields change; `null` removes a field (`desired: null` the whole
 *   section); objects merge recursively; arrays replace whole and may not contain null; an object left
 *   without leaves disappears.
 * - Delta: every desired leaf that reported lacks or holds a different value, with its full path; arrays
 *   compare whole; reported-only fields never appear.
 * - Limits: nesting depth inside desired/reported (AWS: 6), the state's size in bytes (AWS: 8 KB, metadata
 *   not counted), clientToken at most 64 bytes.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A metadata leaf as stored; AWS responses show only `timestamp`. */
interface MetaLeaf {
  timestamp: number;
  version: number;
}
type MetaTree = { [key: string]: MetaTree | MetaLeaf };

export interface ShadowSections {
  desired?: JsonObject;
  reported?: JsonObject;
}

export type Section = 'desired' | 'reported';
const SECTIONS: readonly Section[] = ['desired', 'reported'];

/** The parsed stored document. */
export interface ShadowDocument {
  state: ShadowSections;
  metadata: { desired?: MetaTree; reported?: MetaTree };
  /** The version at which this document was (re)created: older `sinceVersion`s get the whole document. */
  createdVersion: number;
  /** Paths removed by null, newest last, bounded (see MAX_REMOVED). */
  removed?: Array<{ path: string[]; version: number }>;
  /** Set once tombstones were dropped: `sinceVersion` below it gets the whole document. */
  removedFloor?: number;
}

/** A shadow error document (reference §8.2): the code is numeric, the message AWS's. */
export class ShadowError extends Error {
  constructor(
    readonly code: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ShadowError';
  }
}

export const SHADOW_MESSAGES = {
  invalidJson: 'Invalid JSON',
  missingState: 'Missing required node: state',
  stateNotObject: 'State node must be an object',
  desiredNotObject: 'Desired node must be an object',
  reportedNotObject: 'Reported node must be an object',
  invalidVersion: 'Invalid version',
  invalidClientToken: 'Invalid clientToken',
  invalidNode: 'State contains an invalid node',
  versionConflict: 'Version conflict',
  tooLarge: 'The payload exceeds the maximum size allowed',
  encoding: 'Unsupported documented encoding; supported encoding is UTF-8',
  tooManyRequests: 'Too Many Requests',
  internal: 'Internal service failure',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  thingNotFound: 'Thing not found',
} as const;

export const noShadow = (name: string) => new ShadowError(404, `No shadow exists with name: ${name}`);

export interface DocumentLimits {
  /** Bytes of the state (desired + reported, JSON-encoded); AWS: 8192. */
  readonly maxStateBytes: number;
  /** Levels of nesting inside desired/reported; AWS: 6. */
  readonly maxDepth: number;
}

export const AWS_LIMITS: DocumentLimits = { maxStateBytes: 8192, maxDepth: 6 };
const MAX_CLIENT_TOKEN_BYTES = 64;
/** Removal tombstones kept per document for `sinceVersion`. */
const MAX_REMOVED = 64;

// ---- requests ---------------------------------------------------------------------------------------

export interface UpdateRequest {
  /** Per section: an object to merge, null to remove the section, absent to leave it. */
  readonly desired?: JsonObject | null;
  readonly reported?: JsonObject | null;
  readonly version?: number;
  readonly clientToken?: string;
}

export interface SimpleRequest {
  readonly clientToken?: string;
  /** `get` extension: the version the caller holds; the answer carries only what changed after it. */
  readonly sinceVersion?: number;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeUtf8(payload: Buffer | string): string {
  if (typeof payload === 'string') return payload;
  const text = payload.toString('utf8');
  // A lossy decode (invalid UTF-8) shows as U+FFFD that was not in the bytes.
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(payload))
    throw new ShadowError(415, SHADOW_MESSAGES.encoding);
  return text;
}

function parseObject(payload: Buffer | string, allowEmpty: boolean, maxBytes: number): JsonObject {
  const text = decodeUtf8(payload);
  if (Buffer.byteLength(text) > maxBytes) throw new ShadowError(413, SHADOW_MESSAGES.tooLarge);
  if (allowEmpty && text.trim() === '') return {};
  if (depthExceeds(text, 64)) throw new ShadowError(400, SHADOW_MESSAGES.invalidJson);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ShadowError(400, SHADOW_MESSAGES.invalidJson);
  }
  if (!isObject(value)) throw new ShadowError(400, SHADOW_MESSAGES.invalidJson);
  return value;
}

/** A cheap scan of bracket depth before JSON.parse (deep input never reaches recursion). */
function depthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function clientTokenOf(body: JsonObject): string | undefined {
  const token = body['clientToken'];
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || Buffer.byteLength(token) > MAX_CLIENT_TOKEN_BYTES)
    throw new ShadowError(400, SHADOW_MESSAGES.invalidClientToken);
  return token;
}

/** The clientToken of a request that failed to parse, when it can still be read (echoed in /rejected). */
export function salvageClientToken(payload: Buffer | string): string | undefined {
  try {
    const body = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) as unknown;
    const token = isObject(body) ? body['clientToken'] : undefined;
    return typeof token === 'string' && Buffer.byteLength(token) <= MAX_CLIENT_TOKEN_BYTES
      ? token
      : undefined;
  } catch {
    return undefined;
  }
}

/** Depth of nesting of a value: a scalar is 0, `{a:1}` is 1. */
function depthOf(value: Json): number {
  if (Array.isArray(value)) {
    let d = 0;
    for (const v of value) d = Math.max(d, depthOf(v));
    return d + 1;
  }
  if (isObject(value)) {
    let d = 0;
    for (const k in value) d = Math.max(d, depthOf(value[k]!));
    return d + 1;
  }
  return 0;
}

function hasNullInArray(value: Json, inArray: boolean): boolean {
  if (value === null) return inArray;
  if (Array.isArray(value)) return value.some((v) => hasNullInArray(v, true));
  if (isObject(value)) {
    for (const k in value) if (hasNullInArray(value[k]!, inArray)) return true;
  }
  return false;
}

/**
 * Parse and validate an update request (`{"state":{"desired"?,"reported"?},"version"?,"clientToken"?}`).
 * Throws ShadowError with AWS's code and message.
 */
export function parseUpdate(payload: Buffer | string, limits: DocumentLimits): UpdateRequest {
  // The request may carry a whole state plus nulls and the token: allow twice the state limit on the wire.
  const body = parseObject(payload, false, limits.maxStateBytes * 2 + 1024);
  const clientToken = clientTokenOf(body);
  const version = body['version'];
  if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 0))
    throw new ShadowError(400, SHADOW_MESSAGES.invalidVersion);
  if (!('state' in body)) throw new ShadowError(400, SHADOW_MESSAGES.missingState);
  const state = body['state'];
  if (!isObject(state)) throw new ShadowError(400, SHADOW_MESSAGES.stateNotObject);
  const request: { -readonly [K in keyof UpdateRequest]: UpdateRequest[K] } = {};
  for (const key of Object.keys(state)) {
    if (key !== 'desired' && key !== 'reported') throw new ShadowError(400, SHADOW_MESSAGES.invalidNode);
    const section = state[key]!;
    if (section !== null && !isObject(section))
      throw new ShadowError(
        400,
        key === 'desired' ? SHADOW_MESSAGES.desiredNotObject : SHADOW_MESSAGES.reportedNotObject,
      );
    if (section !== null) {
      if (depthOf(section) > limits.maxDepth)
        throw new ShadowError(400, `JSON contains too many levels of nesting; maximum is ${limits.maxDepth}`);
      if (hasNullInArray(section, false)) throw new ShadowError(400, SHADOW_MESSAGES.invalidNode);
    }
    request[key] = section;
  }
  if (version !== undefined) request.version = version;
  if (clientToken !== undefined) request.clientToken = clientToken;
  return request;
}

/** Parse a get or delete request: empty, or `{"clientToken"?, "sinceVersion"?}`. */
export function parseSimple(payload: Buffer | string): SimpleRequest {
  const body = parseObject(payload, true, 4096);
  const clientToken = clientTokenOf(body);
  const since = body['sinceVersion'];
  if (since !== undefined && (typeof since !== 'number' || !Number.isInteger(since) || since < 0))
    throw new ShadowError(400, SHADOW_MESSAGES.invalidVersion);
  const out: { clientToken?: string; sinceVersion?: number } = {};
  if (clientToken !== undefined) out.clientToken = clientToken;
  if (since !== undefined) out.sinceVersion = since;
  return out;
}

// ---- applying an update -----------------------------------------------------------------------------

export const emptyDocument = (createdVersion: number): ShadowDocument => ({
  state: {},
  metadata: {},
  createdVersion,
});

export function parseDocument(text: string): ShadowDocument {
  return JSON.parse(text) as ShadowDocument;
}

export function serializeDocument(doc: ShadowDocument): string {
  return JSON.stringify(doc);
}

const isLeafMeta = (m: MetaTree | MetaLeaf | undefined): m is MetaLeaf =>
  m !== undefined &&
  typeof (m as MetaLeaf).timestamp === 'number' &&
  typeof (m as MetaLeaf).version === 'number';

/**
 * Merge `patch` into `target` (mutated), recording metadata and removals. Returns true when anything
 * changed the target's content.
 */
function mergeSection(
  target: JsonObject,
  meta: MetaTree,
  patch: JsonObject,
  path: string[],
  stamp: MetaLeaf,
  removed: Array<{ path: string[]; version: number }>,
): void {
  for (const key of Object.keys(patch)) {
    const value = patch[key]!;
    if (value === null) {
      if (key in target) {
        delete target[key];
        delete meta[key];
        removed.push({ path: [...path, key], version: stamp.version });
      }
      continue;
    }
    if (isObject(value)) {
      let child = target[key];
      let childMeta = meta[key];
      if (!isObject(child)) {
        child = {};
        target[key] = child;
      }
      if (childMeta === undefined || isLeafMeta(childMeta)) {
        childMeta = {};
        meta[key] = childMeta;
      }
      mergeSection(child, childMeta, value, [...path, key], stamp, removed);
      if (Object.keys(child).length === 0) {
        delete target[key];
        delete meta[key];
      }
      continue;
    }
    target[key] = value;
    meta[key] = { timestamp: stamp.timestamp, version: stamp.version };
  }
}

/**
 * Apply an accepted update: returns the new document (the input is not mutated). `version` is the new
 * version, `now` the epoch second.
 */
export function applyUpdate(
  current: ShadowDocument,
  request: UpdateRequest,
  version: number,
  now: number,
): ShadowDocument {
  // A JSON copy: the document is plain JSON, and this is several times cheaper than structuredClone.
  const next = JSON.parse(JSON.stringify(current)) as ShadowDocument;
  const removed: Array<{ path: string[]; version: number }> = [];
  const stamp = { timestamp: now, version };
  for (const section of SECTIONS) {
    const patch = request[section];
    if (patch === undefined) continue;
    if (patch === null) {
      if (next.state[section] !== undefined) removed.push({ path: [section], version });
      delete next.state[section];
      delete next.metadata[section];
      continue;
    }
    const target = (next.state[section] ??= {});
    const meta = (next.metadata[section] ??= {});
    mergeSection(target, meta, patch, [section], stamp, removed);
    if (Object.keys(target).length === 0) {
      delete next.state[section];
      delete next.metadata[section];
    }
  }
  if (removed.length) {
    const all = [...(next.removed ?? []), ...removed];
    if (all.length > MAX_REMOVED) {
      const dropped = all.splice(0, all.length - MAX_REMOVED);
      next.removedFloor = Math.max(next.removedFloor ?? 0, ...dropped.map((r) => r.version));
    }
    next.removed = all;
  }
  return next;
}

/** Bytes of the state as AWS counts them (desired + reported, metadata excluded). */
export function stateBytes(doc: ShadowDocument): number {
  return Buffer.byteLength(JSON.stringify(doc.state));
}

// ---- delta ------------------------------------------------------------------------------------------

function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i]!, b[i]!)) return false;
    return true;
  }
  if (Array.isArray(b) || typeof a !== 'object') return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b as JsonObject).length) return false;
  for (const k of ka) if (!(k in (b as JsonObject)) || !deepEqual(a[k]!, (b as JsonObject)[k]!)) return false;
  return true;
}

function diff(desired: JsonObject, reported: JsonObject | undefined): JsonObject | undefined {
  let out: JsonObject | undefined;
  for (const key of Object.keys(desired)) {
    const want = desired[key]!;
    const have = reported?.[key];
    let d: Json | undefined;
    if (have === undefined) d = want;
    else if (isObject(want) && isObject(have)) d = diff(want, have);
    else if (!deepEqual(want, have)) d = want;
    if (d !== undefined) (out ??= {})[key] = d;
  }
  return out;
}

/** The delta between desired and reported, or undefined when there is none. */
export function deltaOf(doc: Pick<ShadowDocument, 'state'>): JsonObject | undefined {
  return doc.state.desired ? diff(doc.state.desired, doc.state.reported) : undefined;
}

// ---- AWS-shaped responses ---------------------------------------------------------------------------

/** Public metadata: every leaf `{timestamp}`; with `since`, only leaves written after it. */
function publicMeta(meta: MetaTree, since?: number): MetaTree | undefined {
  let out: MetaTree | undefined;
  for (const key of Object.keys(meta)) {
    const m = meta[key]!;
    if (isLeafMeta(m)) {
      if (since === undefined || m.version > since)
        (out ??= {})[key] = { timestamp: m.timestamp } as unknown as MetaLeaf;
    } else {
      const child = publicMeta(m, since);
      if (child) (out ??= {})[key] = child;
    }
  }
  return out;
}

/** Metadata of the fields in `state`, taken from `meta` (the delta's metadata is desired's). */
function metaFor(state: JsonObject, meta: MetaTree | undefined): MetaTree {
  const out: MetaTree = {};
  for (const key of Object.keys(state)) {
    const m = meta?.[key];
    const v = state[key]!;
    if (isObject(v) && m && !isLeafMeta(m)) out[key] = metaFor(v, m);
    else if (m && isLeafMeta(m)) out[key] = { timestamp: m.timestamp } as unknown as MetaLeaf;
  }
  return out;
}

/** Leaves of `state` written after `since` (per the metadata versions). */
function changedSince(state: JsonObject, meta: MetaTree | undefined, since: number): JsonObject | undefined {
  let out: JsonObject | undefined;
  for (const key of Object.keys(state)) {
    const m = meta?.[key];
    const v = state[key]!;
    if (m && !isLeafMeta(m) && isObject(v)) {
      const child = changedSince(v, m, since);
      if (child) (out ??= {})[key] = child;
    } else if (!m || (isLeafMeta(m) && m.version > since)) (out ??= {})[key] = v;
  }
  return out;
}

function setPath(root: JsonObject, path: readonly string[], value: Json): void {
  let node = root;
  for (let i = 0; i < path.length - 1; i++) {
    const next = node[path[i]!];
    if (next === null) return; // an ancestor is itself removed: that removal covers this one
    if (!isObject(next)) node[path[i]!] = {};
    node = node[path[i]!] as JsonObject;
  }
  const last = path[path.length - 1]!;
  if (!(last in node)) node[last] = value;
}

const withToken = <T extends Record<string, unknown>>(body: T, clientToken: string | undefined) =>
  clientToken === undefined ? body : { ...body, clientToken };

/**
 * The `/get/accepted` document: `state{desired?,reported?,delta?}`, `metadata{desired?,reported?}`,
 * `version`, `timestamp`, `clientToken?`.
 *
 * With `sinceVersion` (Thingstead's extension) and a document that still knows what changed after it, the
 * answer carries `sinceVersion` and only the leaves written after it, with removed fields as `null`: apply
 * it to the copy held like an update document. The delta is always the whole current delta. Without
 * `sinceVersion` in the answer, the document is whole (replace the copy held).
 */
export function getResponse(
  doc: ShadowDocument,
  version: number,
  now: number,
  request: SimpleRequest,
): Record<string, unknown> {
  const since = request.sinceVersion;
  const incremental =
    since !== undefined &&
    since >= doc.createdVersion &&
    since >= (doc.removedFloor ?? 0) &&
    since <= version;
  const state: Record<string, Json> = {};
  const metadata: Record<string, MetaTree> = {};
  for (const section of SECTIONS) {
    const value = doc.state[section];
    const meta = doc.metadata[section];
    if (!incremental) {
      if (value) state[section] = value;
      if (meta) metadata[section] = publicMeta(meta) ?? {};
      continue;
    }
    const changed = value ? changedSince(value, meta, since) : undefined;
    if (changed) state[section] = changed;
    const m = meta ? publicMeta(meta, since) : undefined;
    if (m) metadata[section] = m;
  }
  if (incremental) {
    for (const r of doc.removed ?? []) {
      if (r.version <= since) continue;
      const [section, ...rest] = r.path as [Section, ...string[]];
      if (rest.length === 0) {
        if (doc.state[section] === undefined) state[section] = null;
        continue;
      }
      const existing = state[section];
      if (existing === null) continue;
      const target = isObject(existing) ? existing : (state[section] = {});
      // Only when the field is still absent now (it may have been written again after the removal).
      if (!hasPath(doc.state[section], rest)) setPath(target, rest, null);
    }
  }
  const delta = deltaOf(doc);
  if (delta) state['delta'] = delta;
  const body: Record<string, unknown> = { state, metadata, version, timestamp: now };
  if (incremental) body['sinceVersion'] = since;
  return withToken(body, request.clientToken);
}

function hasPath(root: JsonObject | undefined, path: readonly string[]): boolean {
  let node: Json | undefined = root;
  for (const key of path) {
    if (!isObject(node)) return false;
    node = node[key];
  }
  return node !== undefined;
}

/** The `/update/accepted` document: the fields sent, their metadata, the new version. */
export function updateAcceptedResponse(
  request: UpdateRequest,
  version: number,
  now: number,
): Record<string, unknown> {
  const state: Record<string, Json> = {};
  const metadata: Record<string, Json> = {};
  for (const section of SECTIONS) {
    const patch = request[section];
    if (patch === undefined) continue;
    state[section] = patch;
    metadata[section] = patch === null ? { timestamp: now } : stampTree(patch, now);
  }
  return withToken({ state, metadata, version, timestamp: now }, request.clientToken);
}

function stampTree(value: JsonObject, now: number): JsonObject {
  const out: JsonObject = {};
  for (const key of Object.keys(value)) {
    const v = value[key]!;
    out[key] = isObject(v) ? stampTree(v, now) : { timestamp: now };
  }
  return out;
}

/** The `/update/delta` document, or undefined when there is no delta. */
export function deltaResponse(
  doc: ShadowDocument,
  version: number,
  now: number,
  clientToken: string | undefined,
): Record<string, unknown> | undefined {
  const delta = deltaOf(doc);
  if (!delta) return undefined;
  return withToken(
    { version, timestamp: now, state: delta, metadata: metaFor(delta, doc.metadata.desired) },
    clientToken,
  );
}

/** `{state:{desired?,reported?}, metadata, version}`: one side of `/update/documents`. */
export function snapshot(doc: ShadowDocument, version: number): Record<string, unknown> {
  const state: Record<string, Json> = {};
  const metadata: Record<string, Json> = {};
  for (const section of SECTIONS) {
    if (doc.state[section]) state[section] = doc.state[section]!;
    if (doc.metadata[section]) metadata[section] = (publicMeta(doc.metadata[section]) ?? {}) as Json;
  }
  return { state, metadata, version };
}

/** The `/update/documents` document: previous (absent for a new shadow) and current. */
export function documentsResponse(
  previous: { doc: ShadowDocument; version: number } | null,
  current: { doc: ShadowDocument; version: number },
  now: number,
  clientToken: string | undefined,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (previous) body['previous'] = snapshot(previous.doc, previous.version);
  body['current'] = snapshot(current.doc, current.version);
  body['timestamp'] = now;
  return withToken(body, clientToken);
}

/** `/delete/accepted`: `{version, timestamp, clientToken?}`. */
export function deleteAcceptedResponse(
  version: number,
  now: number,
  clientToken: string | undefined,
): Record<string, unknown> {
  return withToken({ version, timestamp: now }, clientToken);
}

/** A `/rejected` (and HTTP) error document: `{code, message, timestamp, clientToken?}`. */
export function errorResponse(
  err: ShadowError,
  now: number,
  clientToken: string | undefined,
): Record<string, unknown> {
  return withToken({ code: err.code, message: err.message, timestamp: now }, clientToken);
}

/** The fields of a document for the fleet index: desired and reported state only. */
export function indexedState(doc: ShadowDocument): ShadowSections {
  return doc.state;
}
