import { createHash, randomUUID } from 'node:crypto';
import { assertJsonDepth, DEFAULT_MAX_JSON_DEPTH } from '../../json/index.js';
import { formatJoda, parseJoda } from './time.js';
import {
  isObject,
  kindOf,
  numberResult,
  numeric,
  toJson,
  toNumber,
  toText,
  type SqlValue,
} from './values.js';

/** What a rule sees of the message being evaluated (context functions, reference §10.4). */
export interface SqlContext {
  readonly topic: string;
  /** The raw payload bytes (`*` when not JSON, `encode(*, 'base64')`). */
  readonly payload: Buffer;
  /** MQTT client id; "n/a" when the message did not come over MQTT [D]. */
  readonly clientId?: string | undefined;
  readonly principal?: string | undefined;
  /** Rules engine clock, epoch ms (timestamp()). */
  readonly timestamp: number;
  readonly accountId?: string | undefined;
  readonly traceId?: string | undefined;
  /** JSON nesting accepted when parsing payload text (`limits.maxJsonDepth`); default 64. */
  readonly maxJsonDepth?: number | undefined;
}

export interface FunctionEnv {
  readonly ctx: SqlContext;
  readonly version: string;
  /** 2015-10-08 keeps whole-number Decimals apart from Ints. */
  readonly keepWholeDecimal: boolean;
}

type Impl = (env: FunctionEnv, args: SqlValue[]) => SqlValue;
interface FunctionSpec {
  readonly min: number;
  readonly max: number;
  readonly impl: Impl;
  /** Documented as 2016-03-23 and later. */
  readonly v2?: boolean;
}

const str = (v: SqlValue) => toText(v);
const int = (v: SqlValue): number | undefined => {
  const n = toNumber(v);
  return n === undefined ? undefined : Math.trunc(n);
};

/** A unary math function over Decimal; Int results stay Int when `keepInt` says so. */
function math(fn: (x: number) => number, intResult = false): FunctionSpec {
  return {
    min: 1,
    max: 1,
    impl: (env, [a]) => {
      const x = toNumber(a);
      if (x === undefined) return undefined;
      const r = fn(x);
      if (!Number.isFinite(r)) return undefined;
      return intResult ? r : numberResult(r, true, env.keepWholeDecimal);
    },
  };
}

function hash(algorithm: string): FunctionSpec {
  return {
    min: 1,
    max: 1,
    impl: (_env, [a]) => {
      const s = Buffer.isBuffer(a) ? a : str(a);
      if (s === undefined) return undefined;
      try {
        return createHash(algorithm).update(s).digest('hex');
      } catch {
        return undefined; // algorithm not available in this OpenSSL build (md2)
      }
    },
  };
}

function bitwise(fn: (a: number, b: number) => number): FunctionSpec {
  return {
    min: 2,
    max: 2,
    impl: (_env, [a, b]) => {
      const x = numeric(a);
      const y = numeric(b);
      if (x === undefined || y === undefined || !Number.isInteger(x) || !Number.isInteger(y))
        return undefined;
      return Number(BigInt.asIntN(64, BigInt(fn(x, y))));
    },
  };
}

/** Round half away from zero [D: round(1.5) = 2, round(-1.5) = -2]. */
const roundHalfAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

function pad(left: boolean): FunctionSpec {
  return {
    min: 2,
    max: 2,
    impl: (_env, [s, n]) => {
      const text = str(s);
      const count = int(n);
      if (text === undefined || count === undefined) return undefined;
      if (count <= 0) return text;
      return left ? ' '.repeat(count) + text : text + ' '.repeat(count);
    },
  };
}

function regex(pattern: SqlValue, flags = ''): RegExp | undefined {
  const p = str(pattern);
  if (p === undefined) return undefined;
  try {
    return new RegExp(p, flags);
  } catch {
    return undefined;
  }
}

/** The function table: names are matched case-insensitively. Invalid arguments give Undefined [D]. */
export const FUNCTIONS: Record<string, FunctionSpec> = {
  // ---- context
  topic: {
    min: 0,
    max: 1,
    impl: ({ ctx }, args) => {
      // Basic Ingest prefix $aws/rules/<name>/ is not part of topic() [D].
      const topic = ctx.topic.replace(/^\$aws\/rules\/[^/]+\//, '');
      if (args.length === 0) return topic;
      const n = int(args[0]);
      if (n === undefined || n < 1) return undefined;
      return topic.split('/')[n - 1];
    },
  },
  clientid: { min: 0, max: 0, impl: ({ ctx }) => ctx.clientId ?? 'n/a' },
  principal: { min: 0, max: 0, impl: ({ ctx }) => ctx.principal },
  accountid: { min: 0, max: 0, impl: ({ ctx }) => ctx.accountId ?? '000000000000' },
  timestamp: { min: 0, max: 0, impl: ({ ctx }) => ctx.timestamp },
  newuuid: { min: 0, max: 0, impl: () => randomUUID() },
  traceid: { min: 0, max: 0, impl: ({ ctx }) => ctx.traceId },
  sql_version: { min: 0, max: 0, impl: ({ version }) => version },
  rand: { min: 0, max: 0, impl: () => Math.random() },
  // ---- null tests
  isnull: { min: 1, max: 1, impl: (_e, [a]) => a === null },
  isundefined: { min: 1, max: 1, impl: (_e, [a]) => a === undefined },
  // ---- math
  abs: {
    min: 1,
    max: 1,
    impl: (env, [a]) => {
      const x = toNumber(a);
      if (x === undefined) return undefined;
      return typeof a === 'number' && Number.isInteger(a)
        ? Math.abs(x)
        : numberResult(Math.abs(x), true, env.keepWholeDecimal);
    },
  },
  ceil: math(Math.ceil, true),
  floor: math(Math.floor, true),
  round: math(roundHalfAway, true),
  sign: math(Math.sign, true),
  sqrt: math(Math.sqrt),
  exp: math(Math.exp),
  ln: math(Math.log),
  log: math(Math.log10),
  sin: math(Math.sin),
  cos: math(Math.cos),
  tan: math(Math.tan),
  asin: math(Math.asin),
  acos: math(Math.acos),
  atan: math(Math.atan),
  sinh: math(Math.sinh),
  cosh: math(Math.cosh),
  tanh: math(Math.tanh),
  atan2: {
    min: 2,
    max: 2,
    impl: (env, [a, b]) => {
      const x = toNumber(a);
      const y = toNumber(b);
      return x === undefined || y === undefined
        ? undefined
        : numberResult(Math.atan2(x, y), true, env.keepWholeDecimal);
    },
  },
  power: {
    min: 2,
    max: 2,
    impl: (env, [a, b]) => {
      const x = toNumber(a);
      const y = toNumber(b);
      if (x === undefined || y === undefined) return undefined;
      const bothInt = Number.isInteger(numeric(a)) && Number.isInteger(numeric(b)) && y >= 0;
      return numberResult(x ** y, !bothInt, env.keepWholeDecimal);
    },
  },
  mod: {
    min: 2,
    max: 2,
    // [D] mod is the mathematical modulo (sign of the divisor); remainder keeps the dividend's sign like `%`.
    impl: (env, [a, b]) => {
      const x = toNumber(a);
      const y = toNumber(b);
      if (x === undefined || y === undefined || y === 0) return undefined;
      return numberResult(
        ((x % y) + y) % y,
        !Number.isInteger(x) || !Number.isInteger(y),
        env.keepWholeDecimal,
      );
    },
  },
  remainder: {
    min: 2,
    max: 2,
    impl: (env, [a, b]) => {
      const x = toNumber(a);
      const y = toNumber(b);
      if (x === undefined || y === undefined || y === 0) return undefined;
      return numberResult(x % y, !Number.isInteger(x) || !Number.isInteger(y), env.keepWholeDecimal);
    },
  },
  trunc: {
    min: 2,
    max: 2,
    impl: (env, [a, b]) => {
      const x = toNumber(a);
      const n = int(b);
      if (x === undefined || n === undefined) return undefined;
      const f = 10 ** n;
      return numberResult(Math.trunc(x * f) / f, n > 0, env.keepWholeDecimal);
    },
  },
  nanvl: { min: 2, max: 2, impl: (_e, [a, b]) => (typeof a === 'number' && Number.isNaN(a) ? b : a) },
  bitand: bitwise((a, b) => Number(BigInt(a) & BigInt(b))),
  bitor: bitwise((a, b) => Number(BigInt(a) | BigInt(b))),
  bitxor: bitwise((a, b) => Number(BigInt(a) ^ BigInt(b))),
  bitnot: {
    min: 1,
    max: 1,
    impl: (_e, [a]) => {
      const x = numeric(a);
      return x === undefined || !Number.isInteger(x) ? undefined : Number(~BigInt(x));
    },
  },
  // ---- strings
  concat: {
    min: 1,
    max: Infinity,
    impl: (_e, args) => {
      if (args.some((a) => a === undefined)) return undefined;
      if (args.some(Array.isArray)) return args.flatMap((a) => (Array.isArray(a) ? a : [a]));
      const parts = args.map(str);
      return parts.some((p) => p === undefined) ? undefined : parts.join('');
    },
  },
  length: {
    min: 1,
    max: 1,
    impl: (_e, [a]) => {
      const s = typeof a === 'string' ? a : str(a);
      return s === undefined ? undefined : [...s].length;
    },
  },
  numbytes: {
    min: 1,
    max: 1,
    v2: true,
    impl: (_e, [a]) => (typeof a === 'string' ? Buffer.byteLength(a, 'utf8') : undefined),
  },
  lower: { min: 1, max: 1, impl: (_e, [a]) => str(a)?.toLowerCase() },
  upper: { min: 1, max: 1, impl: (_e, [a]) => str(a)?.toUpperCase() },
  trim: { min: 1, max: 1, impl: (_e, [a]) => str(a)?.trim() },
  ltrim: { min: 1, max: 1, impl: (_e, [a]) => str(a)?.trimStart() },
  rtrim: { min: 1, max: 1, impl: (_e, [a]) => str(a)?.trimEnd() },
  lpad: pad(true),
  rpad: pad(false),
  substring: {
    min: 2,
    max: 3,
    // [D] 0-based; out-of-range indexes are clamped; a start past the end gives "".
    impl: (_e, [a, b, c]) => {
      const s = str(a);
      const start = int(b);
      if (s === undefined || start === undefined) return undefined;
      const end = c === undefined ? s.length : int(c);
      if (end === undefined) return undefined;
      const from = Math.max(0, Math.min(start, s.length));
      const to = Math.max(0, Math.min(end, s.length));
      return to <= from ? '' : s.slice(from, to);
    },
  },
  replace: {
    min: 3,
    max: 3,
    impl: (_e, [a, b, c]) => {
      const [s, find, repl] = [str(a), str(b), str(c)];
      return s === undefined || find === undefined || repl === undefined
        ? undefined
        : s.split(find).join(repl);
    },
  },
  indexof: {
    min: 2,
    max: 2,
    v2: true,
    impl: (_e, [a, b]) => {
      const [s, sub] = [str(a), str(b)];
      return s === undefined || sub === undefined ? undefined : s.indexOf(sub);
    },
  },
  startswith: {
    min: 2,
    max: 2,
    impl: (_e, [a, b]) => (typeof a === 'string' && typeof b === 'string' ? a.startsWith(b) : undefined),
  },
  endswith: {
    min: 2,
    max: 2,
    impl: (_e, [a, b]) => (typeof a === 'string' && typeof b === 'string' ? a.endsWith(b) : undefined),
  },
  chr: {
    min: 1,
    max: 1,
    impl: (_e, [a]) => {
      const n = int(a);
      return n === undefined || n < 0 || n > 0x10ffff ? undefined : String.fromCodePoint(n);
    },
  },
  regexp_matches: {
    min: 2,
    max: 2,
    impl: (_e, [a, p]) => {
      const s = str(a);
      const re = regex(p);
      return s === undefined || !re ? undefined : re.test(s);
    },
  },
  regexp_replace: {
    min: 3,
    max: 3,
    impl: (_e, [a, p, r]) => {
      const s = str(a);
      const re = regex(p, 'g');
      const repl = str(r);
      return s === undefined || !re || repl === undefined ? undefined : s.replace(re, repl);
    },
  },
  regexp_substr: {
    min: 2,
    max: 2,
    impl: (_e, [a, p]) => {
      const s = str(a);
      const re = regex(p);
      return s === undefined || !re ? undefined : (re.exec(s)?.[0] ?? '');
    },
  },
  // ---- encoding and hashing
  encode: {
    min: 2,
    max: 2,
    v2: true,
    impl: (_e, [a, scheme]) => {
      if (typeof scheme !== 'string' || scheme.toLowerCase() !== 'base64') return undefined;
      if (Buffer.isBuffer(a)) return a.toString('base64');
      const s = str(a);
      return s === undefined ? undefined : Buffer.from(s, 'utf8').toString('base64');
    },
  },
  decode: {
    min: 2,
    max: 2,
    v2: true,
    // [D] returns an object when the decoded text is JSON, else the text.
    // Decoded JSON nested past the limit is an evaluation error (JsonLimitError), like a deep payload.
    impl: (env, [a, scheme]) => {
      if (typeof a !== 'string' || typeof scheme !== 'string' || scheme.toLowerCase() !== 'base64')
        return undefined;
      const text = Buffer.from(a, 'base64').toString('utf8');
      const maxDepth = env.ctx.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
      assertJsonDepth(text, maxDepth, 'The text given to decode()');
      try {
        const v = JSON.parse(text) as unknown;
        return isObject(v) || Array.isArray(v) ? v : text;
      } catch {
        return text;
      }
    },
  },
  md2: hash('md2'),
  md5: hash('md5'),
  sha1: hash('sha1'),
  sha224: hash('sha224'),
  sha256: hash('sha256'),
  sha384: hash('sha384'),
  sha512: hash('sha512'),
  // ---- collections
  get: {
    min: 2,
    max: 2,
    impl: (_e, [a, k]) => {
      if (Array.isArray(a) || typeof a === 'string') {
        const i = numeric(k);
        if (i === undefined || !Number.isInteger(i) || i < 0) return undefined;
        return a[i];
      }
      if (isObject(a)) {
        const key = str(k);
        return key !== undefined && Object.hasOwn(a, key) ? a[key] : undefined;
      }
      return undefined;
    },
  },
  transform: {
    min: 3,
    max: 3,
    v2: true,
    // 'enrichArray': each object element of the array gets the object's members added.
    impl: (_e, [mode, obj, arr]) => {
      if (typeof mode !== 'string' || !isObject(obj) || !Array.isArray(arr)) return undefined;
      if (mode !== 'enrichArray') return undefined;
      return arr.filter(isObject).map((el) => ({ ...el, ...obj }));
    },
  },
  // ---- time
  parse_time: {
    min: 2,
    max: 3,
    v2: true,
    impl: (_e, [p, t, tz]) => {
      const pattern = str(p);
      const ms = toNumber(t);
      const zone = tz === undefined ? 'UTC' : str(tz);
      if (pattern === undefined || ms === undefined || zone === undefined) return undefined;
      return formatJoda(pattern, ms, zone);
    },
  },
  time_to_epoch: {
    min: 2,
    max: 2,
    impl: (_e, [s, p]) => {
      const text = str(s);
      const pattern = str(p);
      return text === undefined || pattern === undefined ? undefined : parseJoda(text, pattern);
    },
  },
};

/** Functions AWS offers that need AWS services (a roleArn); Thingstead refuses them at creation. */
export const UNSUPPORTED_FUNCTIONS = new Set([
  'aws_lambda',
  'get_dynamodb',
  'get_secret',
  'get_thing_shadow',
  'get_registry_data',
  'machinelearning_predict',
]);

/** For tests and `rules test`: describe a value's SQL type. */
export function sqlTypeName(v: SqlValue): string {
  const k = kindOf(v);
  if (k === 'number') return Number.isInteger(numeric(v)) && typeof v === 'number' ? 'Int' : 'Decimal';
  return k === 'binary' ? 'Binary' : k[0]!.toUpperCase() + k.slice(1);
}

export { toJson };
