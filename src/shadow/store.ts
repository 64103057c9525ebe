/**
 * The shadow store contract: one row per (thing, shadow name), classic shadow = name ''. The row holds the
 * document as JSON text (state, metadata and Thingstead's per-leaf versions; src/shadow/document.ts owns its
 * shape) and the version. Deleted shadows stay as tombstones (`deletedAt` set, `document` null) so the version
 * survives a delete for 48 hours (reference §8.2); `purgeTombstones` removes older ones.
 *
 * Concurrency contract (optimistic): `put` writes only when the stored version still equals `expected`
 * (`null`: no row may exist, tombstone included). Two writers that read the same version: exactly one put
 * succeeds, the other gets `false`, re-reads and re-applies. Nothing is ever lost or overwritten blindly.
 *
 * Implementations: SQLite and PostgreSQL behind `createShadowStore(db)`, one contract suite run against both.
 */
export interface StoredShadow {
  readonly thingName: string;
  /** '' for the classic (unnamed) shadow. */
  readonly shadowName: string;
  readonly version: number;
  /** The document's JSON text; null for a tombstone. */
  readonly document: string | null;
  /** Epoch ms of the last accepted write (update or delete). */
  readonly updatedAt: number;
  /** Epoch ms the shadow was deleted; null while it exists. */
  readonly deletedAt: number | null;
}

export interface ShadowStore {
  /** The row, tombstones included; null when there never was one (or its tombstone was purged). */
  get(thingName: string, shadowName: string): Promise<StoredShadow | null>;
  /** Conditional write (see contract above). Returns true when written, false on a version conflict. */
  put(row: StoredShadow, expected: number | null): Promise<boolean>;
  /**
   * Names of the thing's live (not deleted) shadows in name order, classic ('') included, after `after`
   * (exclusive), at most `limit`.
   */
  listNames(thingName: string, options: { after?: string; limit: number }): Promise<string[]>;
  /** Live rows in (thingName, shadowName) order after the given key, at most `limit` (index loading). */
  scan(options: {
    after?: { thingName: string; shadowName: string };
    limit: number;
  }): Promise<StoredShadow[]>;
  /** Delete every row of a thing, tombstones included (the thing was deleted). Returns rows removed. */
  deleteThing(thingName: string): Promise<number>;
  /** Remove tombstones deleted before `before` (epoch ms). Returns rows removed. */
  purgeTombstones(before: number): Promise<number>;
}
