/**
 * JSON with positions: a small iterative parser that keeps the line and column of every value and key, so
 * a mapping file can be refused with the place at fault (`mapping.json:12:17: ...`). It accepts strict
 * JSON (RFC 8259) plus `//` line comments, so operators can annotate a mapping; nothing else.
 *
 * Contract: `parseLocated` never recurses (a hostile file cannot overflow the stack), and throws
 * `LocatedJsonError` with the 1-based line and column of the first offending character.
 */

export interface Position {
  /** 1-based. */
  readonly line: number;
  /** 1-based, in UTF-16 code units. */
  readonly column: number;
}

export type LocatedValue =
  | { readonly kind: 'object'; readonly at: Position; readonly entries: Map<string, LocatedEntry> }
  | { readonly kind: 'array'; readonly at: Position; readonly items: LocatedValue[] }
  | { readonly kind: 'string'; readonly at: Position; readonly value: string }
  | { readonly kind: 'number'; readonly at: Position; readonly value: number }
  | { readonly kind: 'boolean'; readonly at: Position; readonly value: boolean }
  | { readonly kind: 'null'; readonly at: Position };

export interface LocatedEntry {
  readonly keyAt: Position;
  readonly value: LocatedValue;
}

export class LocatedJsonError extends Error {
  constructor(
    readonly at: Position,
    readonly reason: string,
  ) {
    super(`${at.line}:${at.column}: ${reason}`);
  }
}

type Frame =
  | {
      kind: 'object';
      node: Extract<LocatedValue, { kind: 'object' }>;
      key: string | null;
      keyAt: Position | null;
    }
  | { kind: 'array'; node: Extract<LocatedValue, { kind: 'array' }> };

/** Parse JSON text (with `//` comments) into a tree of values that know where they came from. */
export function parseLocated(text: string): LocatedValue {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const here = (): Position => ({ line, column: i - lineStart + 1 });
  const fail = (reason: string, at: Position = here()): never => {
    throw new LocatedJsonError(at, reason);
  };
  const skipSpace = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x0a) {
        i++;
        line++;
        lineStart = i;
      } else if (c === 0x20 || c === 0x09 || c === 0x0d) i++;
      else if (c === 0x2f && text.charCodeAt(i + 1) === 0x2f) {
        while (i < text.length && text.charCodeAt(i) !== 0x0a) i++;
      } else return;
    }
  };
  const describe = () => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));

  const readString = (): string => {
    const start = here();
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const c = text[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\n') fail('unterminated string (a raw line break inside quotes)', start);
      if (c === '\\') {
        const e = text[i + 1];
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e];
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail(`invalid escape \\${e ?? ''} in a string`);
        continue;
      }
      if (c.charCodeAt(0) < 0x20) fail('control character in a string');
      out += c;
      i++;
    }
  };

  const readScalar = (): LocatedValue => {
    const at = here();
    const c = text[i];
    if (c === '"') return { kind: 'string', at, value: readString() };
    const num = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (num && (c === '-' || (c !== undefined && c >= '0' && c <= '9'))) {
      i += num[0].length;
      return { kind: 'number', at, value: Number(num[0]) };
    }
    for (const [word, node] of [
      ['true', { kind: 'boolean', at, value: true }],
      ['false', { kind: 'boolean', at, value: false }],
      ['null', { kind: 'null', at }],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return node;
      }
    }
    return fail(`expected a value, found ${describe()}`);
  };

  const stack: Frame[] = [];
  let root: LocatedValue | null = null;
  /** Attach a finished value to its parent (or make it the root). */
  const attach = (value: LocatedValue) => {
    const top = stack[stack.length - 1];
    if (!top) root = value;
    else if (top.kind === 'array') top.node.items.push(value);
    else {
      if (top.node.entries.has(top.key!)) fail(`duplicate key "${top.key!}"`, top.keyAt!);
      top.node.entries.set(top.key!, { keyAt: top.keyAt!, value });
      top.key = null;
    }
  };

  /** Read the next value; containers push a frame and return null. */
  const readValue = (): LocatedValue | null => {
    skipSpace();
    const at = here();
    if (text[i] === '{') {
      i++;
      stack.push({
        kind: 'object',
        node: { kind: 'object', at, entries: new Map() },
        key: null,
        keyAt: null,
      });
      return null;
    }
    if (text[i] === '[') {
      i++;
      stack.push({ kind: 'array', node: { kind: 'array', at, items: [] } });
      return null;
    }
    return readScalar();
  };

  const readKey = (frame: Extract<Frame, { kind: 'object' }>) => {
    skipSpace();
    if (text[i] !== '"') fail(`expected a "quoted" key, found ${describe()}`);
    frame.keyAt = here();
    frame.key = readString();
    skipSpace();
    if (text[i] !== ':') fail(`expected ':' after key "${frame.key}", found ${describe()}`);
    i++;
  };

  // Iterative descent: each turn closes a container, or reads one member/item (a scalar, or the opening
  // of a nested container, which becomes the new top of the stack).
  const rootValue = readValue();
  if (rootValue) attach(rootValue);
  let justOpened = stack.length > 0; // the top container has no member yet
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    skipSpace();
    const close = top.kind === 'object' ? '}' : ']';
    if (text[i] === close) {
      i++;
      stack.pop();
      attach(top.node);
      justOpened = false;
      continue;
    }
    if (!justOpened) {
      if (text[i] !== ',')
        fail(
          `expected ',' or '${close}' after ${top.kind === 'object' ? 'a member' : 'an item'}, found ${describe()}`,
        );
      i++;
      skipSpace();
      if (text[i] === close) fail(`trailing comma before '${close}'`);
    }
    if (top.kind === 'object') readKey(top);
    const value = readValue();
    if (value) {
      attach(value);
      justOpened = false;
    } else justOpened = true;
  }
  skipSpace();
  if (i < text.length) fail(`unexpected ${describe()} after the end of the document`);
  if (!root) fail('the file is empty');
  return root!;
}

/** The plain JavaScript value of a located tree (for error messages and pass-through fields). */
export function plainOf(node: LocatedValue): unknown {
  const stack: Array<{ node: LocatedValue; put: (v: unknown) => void }> = [];
  let out: unknown;
  stack.push({ node, put: (v) => (out = v) });
  while (stack.length) {
    const { node: n, put } = stack.pop()!;
    if (n.kind === 'object') {
      const o: Record<string, unknown> = {};
      put(o);
      for (const [k, e] of n.entries) stack.push({ node: e.value, put: (v) => (o[k] = v) });
    } else if (n.kind === 'array') {
      const a: unknown[] = new Array(n.items.length);
      put(a);
      n.items.forEach((item, idx) => stack.push({ node: item, put: (v) => (a[idx] = v) }));
    } else put(n.kind === 'null' ? null : n.value);
  }
  return out;
}
