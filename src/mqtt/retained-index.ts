/**
 * A topic-level trie of retained topic names, for wildcard lookups that visit only the matching branches:
 * `a/+/c` looks at the children of `a` and then one child each; `a/b/#` walks only the subtree under `a/b`.
 * Only a root-level `#` (or `+` over a wide level) visits everything, and even then `$` topics are left out
 * [MQTT-4.7.2-1]. Standard semantics: `a/#` also matches `a` [MQTT-4.7.1-2]; `+` matches an empty level.
 *
 * Contract: lookups go through a cursor that yields in bounded steps, so a caller can spread a wide match
 * over many event-loop turns. A cursor stays valid while the index changes under it (JavaScript Map
 * iterators tolerate insertion and deletion): an entry removed before the cursor reaches it is not
 * yielded, an entry replaced is yielded with its current value, an entry added behind the cursor is missed.
 */

class Node<E> {
  children: Map<string, Node<E>> | null = null;
  entry: E | null = null;
}

/** A frame of the cursor's explicit stack (no recursion, so a walk can stop and resume anywhere). */
type Frame<E> =
  /** `node` matched the first `depth` filter levels. */
  | { readonly kind: 'visit'; readonly node: Node<E>; readonly depth: number }
  /** `+` at filter level `depth - 1`: every child continues at `depth` (`$` children skipped at the root). */
  | {
      readonly kind: 'plus';
      readonly it: Iterator<[string, Node<E>]>;
      readonly depth: number;
      readonly root: boolean;
    }
  /** Inside a `#`: every descendant matches (`$` children skipped at the root). */
  | { readonly kind: 'hash'; readonly it: Iterator<[string, Node<E>]>; readonly root: boolean };

const DOLLAR = 36;

export class TopicIndex<E> {
  private readonly root = new Node<E>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Add or replace the entry of `topic` (a valid topic name). */
  set(topic: string, entry: E): void {
    let node = this.root;
    for (const level of topic.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (!child) {
        child = new Node<E>();
        node.children.set(level, child);
      }
      node = child;
    }
    if (node.entry === null) this.count++;
    node.entry = entry;
  }

  /** Remove the entry of `topic`, pruning nodes left empty. Returns true when one existed. */
  delete(topic: string): boolean {
    const levels = topic.split('/');
    const path: Node<E>[] = [this.root];
    let node = this.root;
    for (const level of levels) {
      const child = node.children?.get(level);
      if (!child) return false;
      path.push(child);
      node = child;
    }
    if (node.entry === null) return false;
    node.entry = null;
    this.count--;
    for (let i = levels.length; i > 0; i--) {
      const n = path[i]!;
      if (n.entry !== null || n.children?.size) break;
      const parent = path[i - 1]!;
      parent.children!.delete(levels[i - 1]!);
      if (parent.children!.size === 0) parent.children = null;
    }
    return true;
  }

  /** A cursor over the entries whose topic matches `filter` (a valid topic filter). */
  cursor(filter: string): IndexCursor<E> {
    return new IndexCursor(this.root, filter.split('/'));
  }

  /** Every entry matching `filter`, in one go (unbounded: for small matches and tests). */
  match(filter: string): E[] {
    const out: E[] = [];
    const c = this.cursor(filter);
    while (!c.take(out, Infinity, Infinity));
    return out;
  }
}

export class IndexCursor<E> {
  private readonly stack: Frame<E>[];

  constructor(
    root: Node<E>,
    private readonly levels: readonly string[],
  ) {
    this.stack = [{ kind: 'visit', node: root, depth: 0 }];
  }

  get done(): boolean {
    return this.stack.length === 0;
  }

  /**
   * Append up to `maxEntries` matching entries to `out`, visiting at most about `maxSteps` trie nodes.
   * Returns true when the walk is complete (nothing more will be yielded).
   */
  take(out: E[], maxEntries: number, maxSteps: number): boolean {
    const { stack, levels } = this;
    const last = levels.length - 1;
    let taken = 0;
    let steps = 0;
    while (stack.length > 0 && taken < maxEntries && steps < maxSteps) {
      steps++;
      const top = stack[stack.length - 1]!;
      if (top.kind === 'visit') {
        stack.pop();
        const { node, depth } = top;
        if (depth > last) {
          if (node.entry !== null) {
            out.push(node.entry);
            taken++;
          }
          continue;
        }
        const level = levels[depth]!;
        if (level === '#') {
          // [MQTT-4.7.1-2] `a/#` matches `a` itself (the root has no entry: `#` alone matches all).
          if (node.entry !== null && depth > 0) {
            out.push(node.entry);
            taken++;
          }
          if (node.children) stack.push({ kind: 'hash', it: node.children.entries(), root: depth === 0 });
        } else if (level === '+') {
          if (node.children)
            stack.push({ kind: 'plus', it: node.children.entries(), depth: depth + 1, root: depth === 0 });
        } else {
          const child = node.children?.get(level);
          if (child) stack.push({ kind: 'visit', node: child, depth: depth + 1 });
        }
        continue;
      }
      const r = top.it.next();
      if (r.done) {
        stack.pop();
        continue;
      }
      const [key, child] = r.value;
      // [MQTT-4.7.2-1] a wildcard at the first level does not match topics starting with `$`.
      if (top.root && key.charCodeAt(0) === DOLLAR) continue;
      if (top.kind === 'plus') {
        stack.push({ kind: 'visit', node: child, depth: top.depth });
      } else {
        if (child.entry !== null) {
          out.push(child.entry);
          taken++;
        }
        if (child.children) stack.push({ kind: 'hash', it: child.children.entries(), root: false });
      }
    }
    return stack.length === 0;
  }
}
