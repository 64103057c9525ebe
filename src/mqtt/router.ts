/**
 * The topic trie: subscriptions by filter level, with a match cache keyed by topic name.
 *
 * Contract: `match()` is on the hot path and synchronous; it returns arrays owned by the router that the
 * caller must not mutate. Every add/remove bumps `generation` and drops the cache, so a cached match is
 * never stale. Shared subscriptions ($share/{group}/{filter}) are kept as groups beside plain entries.
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
  /** Subscription Identifier [MQTT-3.8.2-?], v5 only. */
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

const EMPTY: MatchResult<never> = Object.freeze({ entries: [], groups: [] });
const CACHE_MAX = 50_000;

export class TopicRouter<O extends SubOwner = SubOwner> {
  private readonly root = new TrieNode<O>();
  private readonly cache = new Map<string, MatchResult<O>>();
  /** Bumped on every change to the subscription set (external caches may key on it). */
  generation = 0;
  private count = 0;

  /** Number of subscription entries (shared members included). */
  get size(): number {
    return this.count;
  }

  private changed(): void {
    this.generation++;
    if (this.cache.size) this.cache.clear();
  }

  /**
   * Add or replace the subscription of `entry.owner` on `filter` (the filter without `$share/...`).
   * Replacing keeps one entry per owner and filter [MQTT-3.8.4-3]. Returns true when it was new.
   */
  add(filter: string, entry: SubEntry<O>, group?: string): boolean {
    let node = this.root;
    for (const level of filter.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (!child) {
        child = new TrieNode<O>();
        node.children.set(level, child);
      }
      node = child;
    }
    let list: SubEntry<O>[];
    if (group !== undefined) {
      node.shared ??= new Map();
      let g = node.shared.get(group);
      if (!g) {
        g = { group, filter, members: [], next: 0 };
        node.shared.set(group, g);
      }
      list = g.members;
    } else {
      list = node.entries ??= [];
    }
    this.changed();
    const i = list.findIndex((e) => e.owner === entry.owner);
    if (i >= 0) {
      list[i] = entry;
      return false;
    }
    list.push(entry);
    this.count++;
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
          if (g.members.length === 0) node.shared!.delete(group);
        }
      }
    } else if (node.entries) {
      const i = node.entries.findIndex((e) => e.owner === owner);
      if (i >= 0) {
        node.entries.splice(i, 1);
        removed = true;
      }
    }
    if (!removed) return false;
    this.count--;
    this.changed();
    // Prune empty nodes bottom-up so the trie does not grow with churn.
    for (let i = levels.length; i > 0; i--) {
      const n = path[i]!;
      if (!n.isEmpty()) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  /** Subscriptions matching a topic name. Hot path: cached per topic until the next change. */
  match(topic: string): MatchResult<O> {
    const hit = this.cache.get(topic);
    if (hit) return hit;
    const entries: SubEntry<O>[] = [];
    const groups: SharedGroup<O>[] = [];
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] a topic starting with `$` is not matched by a filter starting with `#` or `+`.
    this.walk(this.root, levels, 0, entries, groups, topic.charCodeAt(0) === 36);
    const result: MatchResult<O> = entries.length || groups.length ? { entries, groups } : EMPTY;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(topic, result);
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

function collect<O extends SubOwner>(
  node: TrieNode<O>,
  entries: SubEntry<O>[],
  groups: SharedGroup<O>[],
): void {
  if (node.entries) for (const e of node.entries) entries.push(e);
  if (node.shared) for (const g of node.shared.values()) groups.push(g);
}
