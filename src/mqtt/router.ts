/**
 * The topic trie: subscriptions by filter level, with a match cache keyed by topic name.
 *
 * Contract: `match()` is on the hot path and synchronous; it returns a result owned by the router that the
 * caller must not mutate, and that never changes afterwards (copy-on-write: a change replaces cached
 * results, so a caller iterating one while a subscription comes or goes sees the set as it was).
 * Shared subscriptions ($share/{group}/{filter}) are kept as groups beside plain entries.
 *
 * The match cache is updated incrementally, as nats-server's sublist does: a new subscription is added to
 * the cached results of the topics its filter matches, a removed one is taken out of them, so a connection
 * storm (thousands of SUBSCRIBEs a second) does not empty the cache for the publishers. The cached topics
 * are kept in a trie of their own levels, so finding the ones a filter matches walks only the filter's
 * path. Every change bumps `generation`; a cached result carries the generation it was computed or patched
 * at, and one computed before `validFrom` is stale and recomputed on its next lookup. A change whose
 * filter would visit more than PATCH_BUDGET cached nodes (`#`, `+/#`, over a large cache) raises
 * `validFrom` instead: the whole cache is invalidated in O(1) and refills on demand.
 */

/** Something that holds subscriptions: a client session or an internal platform handler. */
export interface SubOwner {
  readonly kind: 'session' | 'internal';
}

export interface SubEntry<O extends SubOwner = SubOwner> {
  readonly owner: O;
  /** The filter as the client sent it (with the `$share/group/` prefix for shared subscriptions). */
  readonly filter: string;
  readonly qos: 0 | 1 | 2;
  /** No Local [MQTT-3.8.3-3]. */
  readonly nl: boolean;
  /** Retain As Published [MQTT-3.3.1-12]. */
  readonly rap: boolean;
  /** Retain Handling 0/1/2 [MQTT-3.3.1-9..11]. */
  readonly rh: number;
  /** Subscription Identifier [MQTT-5.0 §3.8.2.1.2], v5 only. */
  readonly subId: number | undefined;
}

export interface SharedGroup<O extends SubOwner = SubOwner> {
  readonly group: string;
  readonly filter: string;
  readonly members: SubEntry<O>[];
  /** Round-robin cursor. */
  next: number;
}

export interface MatchResult<O extends SubOwner = SubOwner> {
  readonly entries: readonly SubEntry<O>[];
  readonly groups: readonly SharedGroup<O>[];
}

class TrieNode<O extends SubOwner> {
  children: Map<string, TrieNode<O>> | null = null;
  entries: SubEntry<O>[] | null = null;
  shared: Map<string, SharedGroup<O>> | null = null;

  isEmpty(): boolean {
    return !this.children?.size && !this.entries?.length && !this.shared?.size;
  }
}

/** One node of the cache trie: a level of cached topic names; `result` is set on a cached topic's node. */
class CacheNode<O extends SubOwner> {
  children: Map<string, CacheNode<O>> | null = null;
  result: MatchResult<O> | null = null;
  /** The router generation `result` was computed or last patched at (stale below `validFrom`). */
  gen = 0;
  constructor(
    readonly parent: CacheNode<O> | null,
    readonly level: string,
  ) {}
}

const EMPTY: MatchResult<never> = Object.freeze({ entries: [], groups: [] });
/** Cached topics; beyond it the oldest cached topic is evicted (FIFO). */
const CACHE_MAX = 50_000;
/** Cache-trie nodes one subscription change may visit to patch results before it invalidates instead. */
export const PATCH_BUDGET = 4096;

export class TopicRouter<O extends SubOwner = SubOwner> {
  private readonly root = new TrieNode<O>();
  /** Cached topics in insertion order (the eviction order), each to its node in the cache trie. */
  private readonly cache = new Map<string, CacheNode<O>>();
  private readonly cacheRoot = new CacheNode<O>(null, '');
  /** Cached results computed or patched before this generation are stale. */
  private validFrom = 0;
  /** Cache-trie nodes visited by the current patch (bounded by PATCH_BUDGET). */
  private steps = 0;
  /** Bumped on every change to the subscription set (external caches may key on it). */
  generation = 0;
  private count = 0;

  /** Number of subscription entries (shared members included). */
  get size(): number {
    return this.count;
  }

  /** Number of cached topic names (stale ones included until recomputed or evicted). */
  get cachedTopics(): number {
    return this.cache.size;
  }

  /**
   * Apply `update` to the cached result of every topic `levels` (a filter) matches; a result that would
   * take more than PATCH_BUDGET steps to find invalidates the whole cache instead.
   */
  private patch(levels: readonly string[], update: (r: MatchResult<O>) => MatchResult<O>): void {
    if (this.cache.size === 0) return;
    this.steps = 0;
    const visit = (n: CacheNode<O>) => {
      if (n.result === null || n.gen < this.validFrom) return;
      n.result = update(n.result);
      n.gen = this.generation;
    };
    if (!this.walkCache(this.cacheRoot, levels, 0, visit)) this.validFrom = this.generation;
  }

  /** Visit the cached topics `levels` matches; false when the step budget ran out. */
  private walkCache(
    node: CacheNode<O>,
    levels: readonly string[],
    i: number,
    visit: (n: CacheNode<O>) => void,
  ): boolean {
    if (++this.steps > PATCH_BUDGET) return false;
    if (i === levels.length) {
      visit(node);
      return true;
    }
    const level = levels[i]!;
    if (level === '#') {
      // [MQTT-4.7.1-2] `a/#` matches `a` too; [MQTT-4.7.2-1] a leading `#` matches no `$` topic.
      if (i > 0) visit(node);
      return this.walkAll(node, visit, i === 0);
    }
    const children = node.children;
    if (children === null) return true;
    if (level !== '+') {
      const child = children.get(level);
      return child === undefined || this.walkCache(child, levels, i + 1, visit);
    }
    for (const [name, child] of children) {
      if (i === 0 && name.charCodeAt(0) === 36) continue; // [MQTT-4.7.2-1]
      if (!this.walkCache(child, levels, i + 1, visit)) return false;
    }
    return true;
  }

  /** Visit every cached topic below `node`. */
  private walkAll(node: CacheNode<O>, visit: (n: CacheNode<O>) => void, skipDollar: boolean): boolean {
    const children = node.children;
    if (children === null) return true;
    for (const [name, child] of children) {
      if (skipDollar && name.charCodeAt(0) === 36) continue;
      if (++this.steps > PATCH_BUDGET) return false;
      visit(child);
      if (!this.walkAll(child, visit, false)) return false;
    }
    return true;
  }

  private cacheResult(topic: string, levels: readonly string[], result: MatchResult<O>): void {
    if (this.cache.size >= CACHE_MAX) this.evictOldest();
    let node = this.cacheRoot;
    for (const level of levels) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (child === undefined) {
        child = new CacheNode<O>(node, level);
        node.children.set(level, child);
      }
      node = child;
    }
    node.result = result;
    node.gen = this.generation;
    this.cache.set(topic, node);
  }

  private evictOldest(): void {
    const oldest = this.cache.keys().next();
    if (oldest.done === true) return;
    let node = this.cache.get(oldest.value)!;
    this.cache.delete(oldest.value);
    node.result = null;
    // Prune the cache trie bottom-up so it holds no more nodes than the cached topics need.
    while (node.parent !== null && node.result === null && !node.children?.size) {
      node.parent.children!.delete(node.level);
      node = node.parent;
    }
  }

  /**
   * Add or replace the subscription of `entry.owner` on `filter` (the filter without `$share/...`).
   * Replacing keeps one entry per owner and filter [MQTT-3.8.4-3]. Returns true when it was new.
   */
  add(filter: string, entry: SubEntry<O>, group?: string): boolean {
    let node = this.root;
    const levels = filter.split('/');
    for (const level of levels) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (!child) {
        child = new TrieNode<O>();
        node.children.set(level, child);
      }
      node = child;
    }
    let list: SubEntry<O>[];
    let created: SharedGroup<O> | null = null;
    if (group !== undefined) {
      node.shared ??= new Map();
      let g = node.shared.get(group);
      if (!g) {
        g = created = { group, filter, members: [], next: 0 };
        node.shared.set(group, g);
      }
      list = g.members;
    } else {
      list = node.entries ??= [];
    }
    this.generation++;
    const i = list.findIndex((e) => e.owner === entry.owner);
    if (i >= 0) {
      const old = list[i]!;
      list[i] = entry;
      if (group === undefined) this.patch(levels, (r) => replaceEntry(r, old, entry));
      return false;
    }
    list.push(entry);
    this.count++;
    // A new member of an existing group is seen through the group object the cached results hold.
    if (group === undefined)
      this.patch(levels, (r) => ({ entries: [...r.entries, entry], groups: r.groups }));
    else if (created !== null) {
      const g = created;
      this.patch(levels, (r) => ({ entries: r.entries, groups: [...r.groups, g] }));
    }
    return true;
  }

  /** Remove the subscription of `owner` on `filter`. Returns true when one existed. */
  remove(filter: string, owner: O, group?: string): boolean {
    const path: TrieNode<O>[] = [this.root];
    const levels = filter.split('/');
    let node: TrieNode<O> | undefined = this.root;
    for (const level of levels) {
      node = node.children?.get(level);
      if (!node) return false;
      path.push(node);
    }
    let removed = false;
    if (group !== undefined) {
      const g = node.shared?.get(group);
      if (g) {
        const i = g.members.findIndex((e) => e.owner === owner);
        if (i >= 0) {
          g.members.splice(i, 1);
          removed = true;
          this.generation++;
          if (g.members.length === 0) {
            node.shared!.delete(group);
            this.patch(levels, (r) => without(r, null, g));
          }
        }
      }
    } else if (node.entries) {
      const i = node.entries.findIndex((e) => e.owner === owner);
      if (i >= 0) {
        const old = node.entries[i]!;
        node.entries.splice(i, 1);
        removed = true;
        this.generation++;
        this.patch(levels, (r) => without(r, old, null));
      }
    }
    if (!removed) return false;
    this.count--;
    // Prune empty nodes bottom-up so the trie does not grow with churn.
    for (let i = levels.length; i > 0; i--) {
      const n = path[i]!;
      if (!n.isEmpty()) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  /** Subscriptions matching a topic name. Hot path: cached per topic, kept current by add/remove. */
  match(topic: string): MatchResult<O> {
    const hit = this.cache.get(topic);
    if (hit !== undefined && hit.gen >= this.validFrom) return hit.result!;
    const entries: SubEntry<O>[] = [];
    const groups: SharedGroup<O>[] = [];
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] a topic starting with `$` is not matched by a filter starting with `#` or `+`.
    this.walk(this.root, levels, 0, entries, groups, topic.charCodeAt(0) === 36);
    const result: MatchResult<O> = entries.length || groups.length ? { entries, groups } : EMPTY;
    if (hit !== undefined) {
      hit.result = result;
      hit.gen = this.generation;
    } else this.cacheResult(topic, levels, result);
    return result;
  }

  private walk(
    node: TrieNode<O>,
    levels: string[],
    i: number,
    entries: SubEntry<O>[],
    groups: SharedGroup<O>[],
    dollar: boolean,
  ): void {
    const children = node.children;
    if (i === levels.length) {
      collect(node, entries, groups);
      // [MQTT-4.7.1-2] `a/#` also matches the parent level `a`.
      const hash = children?.get('#');
      if (hash) collect(hash, entries, groups);
      return;
    }
    if (!children) return;
    const exact = children.get(levels[i]!);
    if (exact) this.walk(exact, levels, i + 1, entries, groups, false);
    if (dollar) return;
    const plus = children.get('+');
    if (plus) this.walk(plus, levels, i + 1, entries, groups, false);
    const hash = children.get('#');
    if (hash) collect(hash, entries, groups);
  }
}

/** A cached result with `old` replaced by `entry` (copy-on-write). */
function replaceEntry<O extends SubOwner>(
  r: MatchResult<O>,
  old: SubEntry<O>,
  entry: SubEntry<O>,
): MatchResult<O> {
  return { entries: r.entries.map((e) => (e === old ? entry : e)), groups: r.groups };
}

/** A cached result without the entry or the group (copy-on-write). */
function without<O extends SubOwner>(
  r: MatchResult<O>,
  entry: SubEntry<O> | null,
  group: SharedGroup<O> | null,
): MatchResult<O> {
  const entries = entry === null ? r.entries : r.entries.filter((e) => e !== entry);
  const groups = group === null ? r.groups : r.groups.filter((g) => g !== group);
  return entries.length || groups.length ? { entries, groups } : EMPTY;
}

function collect<O extends SubOwner>(
  node: TrieNode<O>,
  entries: SubEntry<O>[],
  groups: SharedGroup<O>[],
): void {
  if (node.entries) for (const e of node.entries) entries.push(e);
  if (node.shared) for (const g of node.shared.values()) groups.push(g);
}
