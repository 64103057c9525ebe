/**
 * The rule SQL type system (reference §10.3). Values are plain JS: `undefined` is SQL Undefined, `null` is
 * Null, numbers are Int when integral and Decimal otherwise, plus two wrappers:
 * - `WholeDecimal`: a Decimal whose value is whole (`10.0`), which only 2015-10-08 keeps apart from Int;
 * - `Buffer`: the raw payload (`*` when the payload is not JSON).
 */
export class WholeDecimal {
  constructor(readonly value: number) {}
}

export type SqlValue = unknown;

/** A number view of a numeric value (Int, Decimal or WholeDecimal); undefined for anything else. */
export function numeric(v: SqlValue): number | undefined {
  if (typeof v === 'number') return v;
  if (v instanceof WholeDecimal) return v.value;
  return undefined;
}

export const isDecimal = (v: SqlValue): boolean =>
  v instanceof WholeDecimal || (typeof v === 'number' && !Number.isInteger(v));

export const isObject = (v: SqlValue): v is Record<string, SqlValue> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  !(v instanceof WholeDecimal) &&
  !Buffer.isBuffer(v);

/** [D] implicit numeric conversion accepts strings matching ^-?\d+(\.\d+)?((?i)E-?\d+)?$ */
const NUMERIC_STRING = /^-?\d+(\.\d+)?([eE]-?\d+)?$/;

/** To Decimal (operators and numeric functions): numbers as is, numeric strings parsed, else Undefined. */
export function toNumber(v: SqlValue): number | undefined {
  const n = numeric(v);
  if (n !== undefined) return n;
  if (typeof v === 'string') {
    const s = v.trim();
    if (NUMERIC_STRING.test(s)) return Number(s);
  }
  return undefined;
}

/** To Boolean: booleans and the strings "true"/"false" (case-insensitive). Numbers never convert implicitly. */
export function toBoolean(v: SqlValue): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  return undefined;
}

/** Decimal text: a WholeDecimal keeps its `.0` so 2015-10-08 output shows it as a Decimal. */
function numberText(v: number | WholeDecimal): string {
  if (v instanceof WholeDecimal) return Number.isFinite(v.value) ? `${v.value}.0` : String(v.value);
  return String(v);
}

/** To String: scalars as text, arrays and objects as JSON, Buffers as UTF-8; Null and Undefined stay Undefined. */
export function toText(v: SqlValue): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || v instanceof WholeDecimal) return numberText(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v === null || v === undefined) return undefined;
  return toJson(v);
}

/**
 * Serialize a SQL value to JSON text. Undefined members are omitted [D data types]; a WholeDecimal prints
 * as `10.0`; a Buffer inside a document prints as base64.
 */
export function toJson(v: SqlValue): string {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (v instanceof WholeDecimal) return Number.isFinite(v.value) ? numberText(v) : 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString('base64'));
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJson(x))).join(',')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, SqlValue>)) {
    if (x === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${toJson(x)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A plain JSON-safe copy (WholeDecimal -> number, Buffer -> base64, Undefined members dropped). */
export function toPlain(v: SqlValue): unknown {
  if (v instanceof WholeDecimal) return v.value;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : toPlain(x)));
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toPlain(x);
    return out;
  }
  return v;
}

type Kind = 'undefined' | 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object' | 'binary';
export function kindOf(v: SqlValue): Kind {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number' || v instanceof WholeDecimal) return 'number';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  if (Buffer.isBuffer(v)) return 'binary';
  return 'object';
}

/**
 * `=` [D]: same-type values compare by value (numbers numerically, arrays element-wise in order, objects
 * key/value-wise ignoring order); mismatched types are false; Undefined on either side is Undefined.
 */
export function sqlEquals(a: SqlValue, b: SqlValue): boolean | undefined {
  if (a === undefined || b === undefined) return undefined;
  return deepEqual(a, b);
}

function deepEqual(a: SqlValue, b: SqlValue): boolean {
  const ka = kindOf(a);
  if (ka !== kindOf(b)) return false;
  switch (ka) {
    case 'number':
      return numeric(a) === numeric(b);
    case 'array': {
      const x = a as SqlValue[];
      const y = b as SqlValue[];
      return x.length === y.length && x.every((v, i) => deepEqual(v, y[i]));
    }
    case 'object': {
      const x = a as Record<string, SqlValue>;
      const y = b as Record<string, SqlValue>;
      const keys = Object.keys(x).filter((k) => x[k] !== undefined);
      const keysB = Object.keys(y).filter((k) => y[k] !== undefined);
      return keys.length === keysB.length && keys.every((k) => k in y && deepEqual(x[k], y[k]));
    }
    case 'binary':
      return (a as Buffer).equals(b as Buffer);
    default:
      return a === b;
  }
}

/** `<`, `>`, ... [D]: both sides are converted to Decimal and compared; otherwise Undefined. */
export function sqlCompare(a: SqlValue, b: SqlValue): number | undefined {
  const x = toNumber(a);
  const y = toNumber(b);
  if (x === undefined || y === undefined) return undefined;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Result of numeric arithmetic: Int when both operands are Int, Decimal otherwise (whole ones boxed in V1). */
export function numberResult(value: number, decimal: boolean, keepWholeDecimal: boolean): SqlValue {
  if (!Number.isFinite(value)) return undefined;
  if (decimal && keepWholeDecimal && Number.isInteger(value)) return new WholeDecimal(value);
  return value;
}

/** Java-style truncating integer division and remainder, as for Int operands. */
export function arithmetic(
  op: '+' | '-' | '*' | '/' | '%',
  a: SqlValue,
  b: SqlValue,
  keepWholeDecimal: boolean,
): SqlValue {
  if (a === undefined || b === undefined) return undefined;
  // [D] `+` with a String on either side concatenates.
  if (op === '+' && (typeof a === 'string' || typeof b === 'string')) {
    const x = toText(a);
    const y = toText(b);
    return x === undefined || y === undefined ? undefined : x + y;
  }
  const x = toNumber(a);
  const y = toNumber(b);
  if (x === undefined || y === undefined) return undefined;
  const decimal =
    isDecimal(a) ||
    isDecimal(b) ||
    (typeof a === 'string' && !Number.isInteger(x)) ||
    (typeof b === 'string' && !Number.isInteger(y));
  switch (op) {
    case '+':
      return numberResult(x + y, decimal, keepWholeDecimal);
    case '-':
      return numberResult(x - y, decimal, keepWholeDecimal);
    case '*':
      return numberResult(x * y, decimal, keepWholeDecimal);
    case '/':
      if (y === 0) return undefined;
      return decimal ? numberResult(x / y, true, keepWholeDecimal) : Math.trunc(x / y);
    case '%':
      if (y === 0) return undefined;
      return numberResult(x % y, decimal, keepWholeDecimal);
  }
}
