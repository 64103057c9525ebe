import { E } from '../errors/index.js';

/**
 * Fleet indexing: the AWS query syntax (AWS IoT Developer Guide, "Query syntax" of fleet indexing) and an
 * in-memory index of every thing, kept current by the registry on each change.
 *
 * Supported: `field:value`, bare `value` (thing name), wildcards `*` and `?` in values, `field:*` (exists),
 * quoted values `"a b"`, ranges `field:[a TO b]`, `field:{a TO b}` (exclusive), `*` as an open bound,
 * comparisons `field>v`, `>=`, `<`, `<=`, `AND`, `OR`, `NOT`, parentheses, and implicit AND between terms.
 * Numbers compare numerically when both sides are numeric, otherwise as strings.
 *
 * Fields: thingName, thingId, thingTypeName, thingGroupNames (static groups), attributes.<name>,
 * registry.version, connectivity.connected (the broker's live state). Other contexts extend the field set
 * with `FieldProvider`s (the shadow issue adds `shadow.reported.*`).
 */

export interface IndexedThing {
  readonly thingName: string;
  readonly thingId: string;
  readonly thingTypeName: string | null;
  readonly attributes: Readonly<Record<string, string>>;
  readonly version: number;
  /** Static thing groups the thing is directly in. */
  groups: string[];
}

export type FieldValue = string | number | boolean | readonly string[] | undefined;

/** Resolves a field path for a thing; returns `undefined` when it does not handle the field. */
export interface FieldProvider {
  /** True when this provider owns `field` (e.g. `shadow.reported.temp`). */
  handles(field: string): boolean;
  value(thing: IndexedThing, field: string): FieldValue;
  /**
   * Members this provider adds to the thing's SearchIndex result document (AWS's ThingDocument, e.g.
   * `shadow`: a JSON string), or undefined for none. Called per result thing; must be sync and cheap.
   * @example document: (t) => ({ shadow: JSON.stringify(stateOf(t.thingName)) })
   */
  document?(thing: IndexedThing): Readonly<Record<string, string>> | undefined;
}

type Cmp = 'eq' | 'gt' | 'ge' | 'lt' | 'le';

export type QueryNode =
  | { kind: 'and'; nodes: QueryNode[] }
  | { kind: 'or'; nodes: QueryNode[] }
  | { kind: 'not'; node: QueryNode }
  | { kind: 'cmp'; field: string; op: Cmp; value: string; wildcard: boolean }
  | {
      kind: 'range';
      field: string;
      low: string | null;
      high: string | null;
      lowInc: boolean;
      highInc: boolean;
    };

/** Parse a fleet-indexing query string into an AST (throws InvalidQueryException). */
export function parseQuery(text: string): QueryNode {
  let pos = 0;
  const s = text;
  const ws = () => {
    while (pos < s.length && /\s/.test(s[pos]!)) pos++;
  };
  const keyword = (kw: string) => {
    ws();
    if (s.startsWith(kw, pos) && (pos + kw.length >= s.length || /[\s(]/.test(s[pos + kw.length]!))) {
      pos += kw.length;
      return true;
    }
    return false;
  };
  const word = (stop: RegExp): string => {
    ws();
    if (s[pos] === '"') {
      let out = '';
      pos++;
      while (pos < s.length && s[pos] !== '"') {
        if (s[pos] === '\\' && pos + 1 < s.length) pos++;
        out += s[pos++];
      }
      if (s[pos] !== '"') throw E.QueryUnterminatedQuote({ pos });
      pos++;
      return out;
    }
    const start = pos;
    while (pos < s.length && !stop.test(s[pos]!)) {
      if (s[pos] === '\\' && pos + 1 < s.length) pos++;
      pos++;
    }
    return s.slice(start, pos).replace(/\\(.)/g, '$1');
  };
  const term = (): QueryNode => {
    ws();
    const start = pos;
    const quoted = s[pos] === '"';
    const first = word(/[\s():<>[\]{}]/);
    if (!first && !quoted) throw E.QueryExpectedTerm({ pos: start });
    if (!quoted && s[pos] === ':') {
      pos++;
      ws();
      const open = s[pos];
      if (open === '[' || open === '{') {
        pos++;
        const low = word(/[\s\]}]/);
        if (!keyword('TO')) throw E.QueryExpectedTo({ pos });
        const high = word(/[\s\]}]/);
        ws();
        const close = s[pos];
        if (close !== ']' && close !== '}') throw E.QueryExpectedRangeEnd({ pos });
        pos++;
        return {
          kind: 'range',
          field: first,
          low: low === '*' ? null : low,
          high: high === '*' ? null : high,
          lowInc: open === '[',
          highInc: close === ']',
        };
      }
      const valueQuoted = s[pos] === '"';
      const value = word(/[\s()]/);
      if (!value && !valueQuoted) throw E.QueryExpectedValue({ field: first, pos });
      return { kind: 'cmp', field: first, op: 'eq', value, wildcard: !valueQuoted && /[*?]/.test(value) };
    }
    // Comparisons may have spaces around the operator: `attributes.temp > 25`.
    const beforeOp = pos;
    ws();
    if (!quoted && (s[pos] === '<' || s[pos] === '>')) {
      let op: Cmp = s[pos] === '<' ? 'lt' : 'gt';
      pos++;
      if (s[pos] === '=') {
        op = op === 'lt' ? 'le' : 'ge';
        pos++;
      }
      const value = word(/[\s()]/);
      if (!value) throw E.QueryExpectedComparand({ pos });
      return { kind: 'cmp', field: first, op, value, wildcard: false };
    }
    pos = beforeOp;
    if (!quoted && first === '*')
      return { kind: 'range', field: 'thingName', low: null, high: null, lowInc: true, highInc: true };
    return {
      kind: 'cmp',
      field: 'thingName',
      op: 'eq',
      value: first,
      wildcard: !quoted && /[*?]/.test(first),
    };
  };
  const primary = (): QueryNode => {
    ws();
    if (s[pos] === '(') {
      pos++;
      const node = or();
      ws();
      if (s[pos] !== ')') throw E.QueryExpectedParen({ pos });
      pos++;
      return node;
    }
    return term();
  };
  const not = (): QueryNode => (keyword('NOT') ? { kind: 'not', node: not() } : primary());
  const and = (): QueryNode => {
    const nodes = [not()];
    for (;;) {
      ws();
      if (pos >= s.length || s[pos] === ')') break;
      const save = pos;
      if (keyword('OR')) {
        pos = save;
        break;
      }
      keyword('AND');
      nodes.push(not());
    }
    return nodes.length === 1 ? nodes[0]! : { kind: 'and', nodes };
  };
  const or = (): QueryNode => {
    const nodes = [and()];
    while (keyword('OR')) nodes.push(and());
    return nodes.length === 1 ? nodes[0]! : { kind: 'or', nodes };
  };
  if (!text.trim()) throw E.QueryEmpty();
  const node = or();
  ws();
  if (pos < s.length) throw E.QueryUnexpected({ char: s[pos]!, pos });
  return node;
}

const NUMERIC = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

function compareValues(a: string, b: string): number {
  if (NUMERIC.test(a) && NUMERIC.test(b)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

function wildcardRegex(pattern: string): RegExp {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's');
}

/** A compiled query; `node` (set by compileQuery) lets the index plan with posting lists. */
export type Predicate = ((thing: IndexedThing) => boolean) & { node?: QueryNode };

/** Options for evaluating the built-in fields. */
export interface SearchContext {
  /** The broker's live state for connectivity.connected (client id = thing name). */
  readonly isConnected: (thingName: string) => boolean;
  readonly providers?: readonly FieldProvider[];
}

const BUILTIN =
  /^(thingName|thingId|thingTypeName|thingGroupNames|registry\.version|connectivity\.connected|attributes\.[^\s]+)$/;

function resolver(field: string, ctx: SearchContext): (t: IndexedThing) => FieldValue {
  switch (field) {
    case 'thingName':
      return (t) => t.thingName;
    case 'thingId':
      return (t) => t.thingId;
    case 'thingTypeName':
      return (t) => t.thingTypeName ?? undefined;
    case 'thingGroupNames':
      return (t) => t.groups;
    case 'registry.version':
      return (t) => t.version;
    case 'connectivity.connected':
      return (t) => ctx.isConnected(t.thingName);
  }
  if (field.startsWith('attributes.')) {
    const name = field.slice('attributes.'.length);
    return (t) => t.attributes[name];
  }
  const provider = ctx.providers?.find((p) => p.handles(field));
  if (provider) return (t) => provider.value(t, field);
  throw E.QueryUnknownField({ field });
}

/** Compile an AST to a predicate (compile once per query or dynamic group, evaluate per thing). */
export function compileQuery(node: QueryNode, ctx: SearchContext): Predicate {
  const predicate: Predicate = compileNode(node, ctx);
  predicate.node = node;
  return predicate;
}

function compileNode(node: QueryNode, ctx: SearchContext): (thing: IndexedThing) => boolean {
  switch (node.kind) {
    case 'and': {
      const ps = node.nodes.map((n) => compileNode(n, ctx));
      return (t) => ps.every((p) => p(t));
    }
    case 'or': {
      const ps = node.nodes.map((n) => compileNode(n, ctx));
      return (t) => ps.some((p) => p(t));
    }
    case 'not': {
      const p = compileNode(node.node, ctx);
      return (t) => !p(t);
    }
    case 'range': {
      const get = resolver(node.field, ctx);
      const { low, high, lowInc, highInc } = node;
      const test = (v: string) => {
        if (low !== null) {
          const c = compareValues(v, low);
          if (c < 0 || (c === 0 && !lowInc)) return false;
        }
        if (high !== null) {
          const c = compareValues(v, high);
          if (c > 0 || (c === 0 && !highInc)) return false;
        }
        return true;
      };
      return (t) => anyOf(get(t), test);
    }
    case 'cmp': {
      const get = resolver(node.field, ctx);
      const { value, op } = node;
      let test: (v: string) => boolean;
      if (op === 'eq') {
        if (value === '*') test = () => true;
        else if (node.wildcard) {
          const re = wildcardRegex(value);
          test = (v) => re.test(v);
        } else
          test = (v) =>
            v === value || (NUMERIC.test(v) && NUMERIC.test(value) && Number(v) === Number(value));
      } else {
        test = (v) => {
          const c = compareValues(v, value);
          return op === 'gt' ? c > 0 : op === 'ge' ? c >= 0 : op === 'lt' ? c < 0 : c <= 0;
        };
      }
      return (t) => anyOf(get(t), test);
    }
  }
}

function anyOf(v: FieldValue, test: (s: string) => boolean): boolean {
  if (v === undefined) return false;
  if (Array.isArray(v)) return v.some(test);
  return test(String(v));
}

/** True when a query only uses fields this build knows (for validating dynamic group queries early). */
export const isBuiltinField = (field: string) => BUILTIN.test(field);

/** Fields with exact-value posting lists (equality terms on them avoid a full scan). */
const POSTED = (field: string) =>
  field === 'thingTypeName' || field === 'thingGroupNames' || field.startsWith('attributes.');

function postedValues(t: IndexedThing): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (t.thingTypeName) out.push(['thingTypeName', t.thingTypeName]);
  for (const g of t.groups) out.push(['thingGroupNames', g]);
  for (const [k, v] of Object.entries(t.attributes)) out.push([`attributes.${k}`, v]);
  return out;
}

/**
 * The in-memory fleet index: every thing in name order (keyset pagination), plus posting lists of exact
 * values of thingTypeName, thingGroupNames and attributes. A query whose AST narrows to posting lists
 * (equality terms, under AND or all-indexed OR) evaluates only those candidates; anything else scans in
 * name order and stops at the page limit. Updated synchronously by the registry after each committed change.
 */
export class FleetIndex {
  private readonly byName = new Map<string, IndexedThing>();
  /** Names ascending, and the things at the same positions (no map lookup while scanning). */
  private names: string[] = [];
  private things: IndexedThing[] = [];
  private readonly postings = new Map<string, Map<string, Set<string>>>();

  get size(): number {
    return this.byName.size;
  }

  get(name: string): IndexedThing | undefined {
    return this.byName.get(name);
  }

  private post(t: IndexedThing, add: boolean): void {
    for (const [field, value] of postedValues(t)) {
      let byValue = this.postings.get(field);
      if (!byValue) {
        if (!add) continue;
        this.postings.set(field, (byValue = new Map()));
      }
      let set = byValue.get(value);
      if (add) {
        if (!set) byValue.set(value, (set = new Set()));
        set.add(t.thingName);
      } else if (set) {
        set.delete(t.thingName);
        if (set.size === 0) byValue.delete(value);
      }
    }
  }

  /** Replace the whole index (at start). */
  load(things: IndexedThing[]): void {
    this.byName.clear();
    this.postings.clear();
    for (const t of things) this.byName.set(t.thingName, t);
    this.names = [...this.byName.keys()].sort();
    this.things = this.names.map((n) => this.byName.get(n)!);
    for (const t of this.things) this.post(t, true);
  }

  upsert(thing: IndexedThing): void {
    const prev = this.byName.get(thing.thingName);
    const next = { ...thing, groups: thing.groups ?? prev?.groups ?? [] };
    if (prev) this.post(prev, false);
    this.byName.set(thing.thingName, next);
    this.post(next, true);
    const i = this.lowerBound(thing.thingName);
    if (prev) this.things[i] = next;
    else {
      this.names.splice(i, 0, thing.thingName);
      this.things.splice(i, 0, next);
    }
  }

  remove(name: string): void {
    const prev = this.byName.get(name);
    if (!prev) return;
    this.byName.delete(name);
    this.post(prev, false);
    const i = this.lowerBound(name);
    if (this.names[i] === name) {
      this.names.splice(i, 1);
      this.things.splice(i, 1);
    }
  }

  setGroups(name: string, groups: string[]): void {
    const t = this.byName.get(name);
    if (!t) return;
    this.post(t, false);
    t.groups = groups;
    this.post(t, true);
  }

  /** Remove a group from every thing's group list (group deleted). */
  dropGroup(group: string): void {
    const members = this.postings.get('thingGroupNames')?.get(group);
    for (const name of [...(members ?? [])]) {
      const t = this.byName.get(name);
      if (t)
        this.setGroups(
          name,
          t.groups.filter((g) => g !== group),
        );
    }
  }

  private lowerBound(name: string): number {
    let lo = 0;
    let hi = this.names.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.names[mid]! < name) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Candidate names for a query node from posting lists, or null when it needs a scan. */
  private candidates(node: QueryNode): Set<string> | null {
    switch (node.kind) {
      case 'cmp':
        if (node.op !== 'eq' || node.wildcard || NUMERIC.test(node.value)) return null;
        if (node.field === 'thingName') return new Set(this.byName.has(node.value) ? [node.value] : []);
        if (!POSTED(node.field)) return null;
        return this.postings.get(node.field)?.get(node.value) ?? new Set();
      case 'and': {
        let best: Set<string> | null = null;
        for (const child of node.nodes) {
          const c = this.candidates(child);
          if (c && (!best || c.size < best.size)) best = c;
        }
        return best;
      }
      case 'or': {
        const union = new Set<string>();
        for (const child of node.nodes) {
          const c = this.candidates(child);
          if (!c) return null;
          for (const n of c) union.add(n);
        }
        return union;
      }
      default:
        return null;
    }
  }

  /** Things matching `predicate`, ascending by name, strictly after `after`, at most `limit`. */
  search(
    predicate: Predicate,
    after: string | undefined,
    limit: number,
  ): { things: IndexedThing[]; more: boolean } {
    const out: IndexedThing[] = [];
    const cand = predicate.node ? this.candidates(predicate.node) : null;
    // Sorting the candidates pays off unless they are a large share of the fleet.
    if (cand && cand.size * 16 < this.names.length + 1024) {
      const names = [...cand].filter((n) => after === undefined || n > after).sort();
      for (const n of names) {
        const t = this.byName.get(n);
        if (!t || !predicate(t)) continue;
        if (out.length === limit) return { things: out, more: true };
        out.push(t);
      }
      return { things: out, more: false };
    }
    let i = after === undefined ? 0 : this.lowerBound(after);
    if (after !== undefined && this.names[i] === after) i++;
    const things = this.things;
    for (; i < things.length; i++) {
      const t = things[i]!;
      if (!predicate(t)) continue;
      if (out.length === limit) return { things: out, more: true };
      out.push(t);
    }
    return { things: out, more: false };
  }
}
