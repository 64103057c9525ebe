/**
 * A strict JSON reader for provisioning template bodies that says where a syntax error is (line and column,
 * both from 1) and refuses what JSON.parse lets through silently: a key given twice in one object (the second
 * would win, so a template with two "Resources" sections would lose one without a word).
 *
 * Contract: pure; nesting is capped at `maxDepth` (checked before descending, so recursion is bounded);
 * linear in the text's length. Values are plain JSON values (objects have no prototype surprises: keys
 * such as "__proto__" are stored as own properties).
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type JsonReadResult =
  { ok: true; value: JsonValue } | { ok: false; line: number; column: number; message: string };

/** The deepest nesting a template may use (arrays and objects). */
export const TEMPLATE_MAX_DEPTH = 32;

class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Read JSON text; on error, the 1-based line and column of the offending character and what was expected.
 * @example readJson('{"a": }') // { ok: false, line: 1, column: 7, message: "Expected a value (string, number, object, array, true, false or null), found '}'" }
 */
export function readJson(text: string, maxDepth = TEMPLATE_MAX_DEPTH): JsonReadResult {
  const reader = new Reader(text, maxDepth);
  try {
    reader.skipSpace();
    const value = reader.value(0);
    reader.skipSpace();
    if (reader.pos < text.length)
      reader.fail(`Unexpected ${reader.describe()} after the end of the document`);
    return { ok: true, value };
  } catch (err) {
    if (!(err instanceof JsonSyntaxError)) throw err;
    const { line, column } = lineAndColumn(text, err.offset);
    return { ok: false, line, column, message: err.message };
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPES: Record<string, string> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

class Reader {
  pos = 0;
  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  fail(message: string, at = this.pos): never {
    throw new JsonSyntaxError(at, message);
  }

  describe(): string {
    if (this.pos >= this.text.length) return 'end of the document';
    return `'${this.text[this.pos]}'`;
  }

  skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else break;
    }
  }

  value(depth: number): JsonValue {
    const c = this.text[this.pos];
    if (c === '{' || c === '[') {
      if (depth >= this.maxDepth) this.fail(`The template nests deeper than ${this.maxDepth} levels`);
      return c === '{' ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    return this.fail(
      `Expected a value (string, number, object, array, true, false or null), found ${this.describe()}`,
    );
  }

  private object(depth: number): JsonValue {
    const out: Record<string, JsonValue> = {};
    const seen = new Set<string>();
    this.pos++; // {
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail(`Expected a double-quoted key, found ${this.describe()}`);
      const keyAt = this.pos;
      const key = this.string();
      if (seen.has(key)) this.fail(`Duplicate key "${key}" in one object (each key may appear once)`, keyAt);
      seen.add(key);
      this.skipSpace();
      if (this.text[this.pos] !== ':')
        this.fail(`Expected ':' after the key "${key}", found ${this.describe()}`);
      this.pos++;
      this.skipSpace();
      Object.defineProperty(out, key, {
        value: this.value(depth),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === ',') {
        const commaAt = this.pos++;
        this.skipSpace();
        if (this.text[this.pos] === '}') this.fail("Trailing comma before '}' (remove this ',')", commaAt);
        continue;
      }
      if (c === '}') {
        this.pos++;
        return out;
      }
      this.fail(`Expected ',' or '}' after the value of "${key}", found ${this.describe()}`);
    }
  }

  private array(depth: number): JsonValue {
    const out: JsonValue[] = [];
    this.pos++; // [
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth));
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === ',') {
        const commaAt = this.pos++;
        this.skipSpace();
        if (this.text[this.pos] === ']') this.fail("Trailing comma before ']' (remove this ',')", commaAt);
        continue;
      }
      if (c === ']') {
        this.pos++;
        return out;
      }
      this.fail(`Expected ',' or ']' in the array, found ${this.describe()}`);
    }
  }

  private number(): number {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) return this.fail(`Malformed number at ${this.describe()}`);
    this.pos += m[0].length;
    return Number(m[0]);
  }

  private string(): string {
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    let chunkStart = this.pos;
    for (;;) {
      if (this.pos >= this.text.length) this.fail("Unterminated string (a closing '\"' is missing)", start);
      const code = this.text.charCodeAt(this.pos);
      if (code === 0x22) {
        out += this.text.slice(chunkStart, this.pos);
        this.pos++;
        return out;
      }
      if (code < 0x20) this.fail('Control character inside a string (write it as an escape such as \\n)');
      if (code === 0x5c) {
        out += this.text.slice(chunkStart, this.pos);
        const e = this.text[this.pos + 1];
        if (e === 'u') {
          const hex = this.text.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('Malformed \\u escape (four hex digits expected)');
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 6;
        } else if (e !== undefined && ESCAPES[e] !== undefined) {
          out += ESCAPES[e];
          this.pos += 2;
        } else {
          this.fail(`Unknown escape '\\${e ?? ''}' in a string`);
        }
        chunkStart = this.pos;
        continue;
      }
      this.pos++;
    }
  }
}
