import { DEFAULT_MAX_JSON_DEPTH, JsonLimitError, parseJsonBounded } from '../../json/index.js';
import type { Expr, Query } from './ast.js';
import { E } from '../../errors/index.js';
import { SqlParseError } from './errors.js';
import { FUNCTIONS, UNSUPPORTED_FUNCTIONS, type FunctionEnv, type SqlContext } from './functions.js';
import { DEFAULT_SQL_VERSION, parseSql, SQL_VERSIONS, type SqlVersion } from './parser.js';
import {
  arithmetic,
  isObject,
  numberResult,
  numeric,
  sqlCompare,
  sqlEquals,
  toBoolean,
  toNumber,
  toText,
  WholeDecimal,
  type SqlValue,
} from './values.js';

/** One compiled expression: a closure over the environment and the current document (payload or element). */
type Fn = (env: FunctionEnv, doc: SqlValue) => SqlValue;

/** The payload as rules see it: parsed JSON, or raw bytes when it is not JSON [D §10.5]. */
export interface ParsedPayload {
  readonly json: boolean;
  /** The JSON value (undefined when binary). */
  readonly value: SqlValue;
  /**
   * Set when the payload is JSON the rules must not evaluate (nested deeper than `limits.maxJsonDepth`):
   * `evaluate` throws it, and the engine counts a rule error and calls the errorAction.
   */
  readonly error?: JsonLimitError;
}

/**
 * Parse a payload once per message, shared by every rule that matches it. Only a JSON object or array
 * counts as a document; a bare JSON scalar is also accepted as JSON. The nesting depth is checked before
 * parsing (iteratively), so no evaluation ever walks a value deeper than `maxDepth`.
 */
export function parsePayload(payload: Buffer, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): ParsedPayload {
  if (payload.length === 0) return { json: false, value: undefined };
  try {
    return { json: true, value: parseJsonBounded(payload, { maxDepth }, 'The payload') };
  } catch (err) {
    if (err instanceof JsonLimitError) return { json: false, value: undefined, error: err };
    return { json: false, value: undefined };
  }
}

/** The result of running a rule's SQL on one message. */
export type SqlResult =
  | { readonly matched: false }
  /** `value` is the SELECT output: a document, a bare value (SELECT VALUE), or the raw payload bytes. */
  | { readonly matched: true; readonly value: SqlValue };

export interface CompiledSql {
  readonly sql: string;
  readonly version: SqlVersion;
  /** The FROM topic filter; null when FROM was omitted (Basic Ingest only). */
  readonly topicFilter: string | null;
  /**
   * Evaluate WHERE then SELECT for one message. Pure and synchronous: no I/O, no await. Throws the
   * payload's JsonLimitError when it is too deep to evaluate.
   * @example const r = compiled.evaluate({ topic: 'a/b', payload, timestamp: Date.now() }, parsePayload(payload));
   */
  evaluate(ctx: SqlContext, parsed?: ParsedPayload): SqlResult;
}

/**
 * Parse and compile a rule SQL statement once (at rule creation). Throws SqlParseError with a position for
 * syntax errors, unknown functions, wrong argument counts, and features the chosen SQL version lacks.
 * Evaluation is closures over the AST: never eval or new Function.
 */
export function compileSql(sql: string, version: string = DEFAULT_SQL_VERSION): CompiledSql {
  if (!SQL_VERSIONS.includes(version as SqlVersion))
    throw new SqlParseError(E.SqlUnknownVersion.describe({ version }), 0);
  const v = version as SqlVersion;
  const query = parseSql(sql, v);
  const compiler = new Compiler(v);
  const where = query.where ? compiler.expr(query.where) : null;
  const select = compiler.projection(query, true);
  const keepWholeDecimal = v === '2015-10-08';
  return {
    sql,
    version: v,
    topicFilter: query.topicFilter,
    evaluate(ctx, parsed = parsePayload(ctx.payload, ctx.maxJsonDepth)) {
      if (parsed.error) throw parsed.error;
      const env: FunctionEnv = { ctx, version: v, keepWholeDecimal };
      const doc = parsed.json ? parsed.value : undefined;
      // [D] WHERE runs before SELECT and must be true for actions to run.
      if (where && where(env, doc) !== true) return { matched: false };
      return { matched: true, value: select(env, doc, parsed) };
    },
  };
}

type Projection = (env: FunctionEnv, doc: SqlValue, parsed?: ParsedPayload) => SqlValue;

class Compiler {
  private readonly keepWholeDecimal: boolean;
  constructor(private readonly version: SqlVersion) {
    this.keepWholeDecimal = version === '2015-10-08';
  }

  /** SELECT list -> closure producing the output document (or bare value for SELECT VALUE). */
  projection(q: Query, top: boolean): Projection {
    if (q.value) {
      const f = this.expr(q.value);
      return (env, doc) => f(env, doc);
    }
    const onlyStar = q.items.length === 1 && q.items[0]!.kind === 'star';
    const items = q.items.map((item, idx) => {
      if (item.kind === 'star') return { star: true as const };
      const path = item.alias ?? [defaultName(item.expr, idx)];
      return { star: false as const, path, f: this.expr(item.expr) };
    });
    return (env, doc, parsed) => {
      // [D §10.5] `SELECT *` on a non-JSON payload forwards the bytes unchanged.
      if (top && onlyStar && parsed && !parsed.json) return env.ctx.payload;
      if (onlyStar && !isObject(doc)) return doc;
      const out: Record<string, SqlValue> = {};
      for (const item of items) {
        if (item.star) {
          if (isObject(doc)) Object.assign(out, doc);
          else if (top && parsed && !parsed.json && env.ctx.payload.length > 0) continue;
          continue;
        }
        const value = item.f(env, doc);
        if (value === undefined) continue; // [D] Undefined is omitted from the output
        setPath(out, item.path, value);
      }
      return out;
    };
  }

  expr(e: Expr): Fn {
    switch (e.type) {
      case 'literal': {
        const value =
          e.decimal && typeof e.value === 'number' && Number.isInteger(e.value) && this.keepWholeDecimal
            ? new WholeDecimal(e.value)
            : e.value;
        return () => value;
      }
      case 'ident': {
        const name = e.name;
        return (_env, doc) => (isObject(doc) && Object.hasOwn(doc, name) ? doc[name] : undefined);
      }
      case 'member': {
        const obj = this.expr(e.object);
        const name = e.name;
        return (env, doc) => {
          const o = obj(env, doc);
          return isObject(o) && Object.hasOwn(o, name) ? o[name] : undefined;
        };
      }
      case 'index': {
        const obj = this.expr(e.object);
        const index = this.expr(e.index);
        return (env, doc) => {
          const o = obj(env, doc);
          const k = index(env, doc);
          if (Array.isArray(o)) {
            const i = numeric(k);
            return i !== undefined && Number.isInteger(i) ? o[i < 0 ? o.length + i : i] : undefined;
          }
          if (isObject(o) && typeof k === 'string') return Object.hasOwn(o, k) ? o[k] : undefined;
          return undefined;
        };
      }
      case 'star':
        return (env, doc) => (doc === undefined ? env.ctx.payload : doc);
      case 'unary':
        return this.unary(e.op, this.expr(e.operand));
      case 'binary':
        return this.binary(e.op, this.expr(e.left), this.expr(e.right));
      case 'call':
        return this.call(e);
      case 'cast':
        return this.cast(e);
      case 'case':
        return this.caseExpr(e);
      case 'object': {
        const entries = e.entries.map((en) => ({ key: en.key, f: this.expr(en.value) }));
        return (env, doc) => {
          const out: Record<string, SqlValue> = {};
          for (const en of entries) {
            const v = en.f(env, doc);
            if (v !== undefined) out[en.key] = v;
          }
          return out;
        };
      }
      case 'array': {
        const items = e.items.map((i) => this.expr(i));
        return (env, doc) => items.map((f) => f(env, doc));
      }
      case 'subquery':
        return this.subquery(e.query);
    }
  }

  private unary(op: '-' | 'NOT', f: Fn): Fn {
    if (op === 'NOT') {
      return (env, doc) => {
        const b = toBoolean(f(env, doc));
        return b === undefined ? undefined : !b;
      };
    }
    const keep = this.keepWholeDecimal;
    return (env, doc) => {
      const v = f(env, doc);
      const n = toNumber(v);
      if (n === undefined) return undefined;
      return v instanceof WholeDecimal ? numberResult(-n, true, keep) : -n;
    };
  }

  private binary(op: Extract<Expr, { type: 'binary' }>['op'], l: Fn, r: Fn): Fn {
    const keep = this.keepWholeDecimal;
    switch (op) {
      case 'AND':
      case 'OR':
        // [D] Boolean operands or the strings "true"/"false"; anything else gives Undefined.
        return (env, doc) => {
          const a = toBoolean(l(env, doc));
          const b = toBoolean(r(env, doc));
          if (a === undefined || b === undefined) return undefined;
          return op === 'AND' ? a && b : a || b;
        };
      case '=':
        return (env, doc) => sqlEquals(l(env, doc), r(env, doc));
      case '<>':
        return (env, doc) => {
          const eq = sqlEquals(l(env, doc), r(env, doc));
          return eq === undefined ? undefined : !eq;
        };
      case '<':
      case '<=':
      case '>':
      case '>=':
        return (env, doc) => {
          const c = sqlCompare(l(env, doc), r(env, doc));
          if (c === undefined) return undefined;
          return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
        };
      case 'IN':
        return (env, doc) => {
          const needle = l(env, doc);
          const hay = r(env, doc);
          if (needle === undefined || !Array.isArray(hay)) return undefined;
          return hay.some((x) => sqlEquals(needle, x) === true);
        };
      default:
        return (env, doc) => arithmetic(op, l(env, doc), r(env, doc), keep);
    }
  }

  private call(e: Extract<Expr, { type: 'call' }>): Fn {
    if (UNSUPPORTED_FUNCTIONS.has(e.name))
      throw new SqlParseError(E.SqlAwsOnlyFunction.describe({ name: e.name }), e.pos);
    const spec = FUNCTIONS[e.name];
    if (!spec) throw new SqlParseError(E.SqlUnknownFunction.describe({ name: e.name }), e.pos);
    if (spec.v2 && this.version === '2015-10-08')
      throw new SqlParseError(E.SqlFunctionRequiresV2.describe({ name: e.name }), e.pos);
    if (e.args.length < spec.min || e.args.length > spec.max)
      throw new SqlParseError(
        E.SqlFunctionArity.describe({ name: e.name, arity: arity(spec.min, spec.max), count: e.args.length }),
        e.pos,
      );
    const args = e.args.map((a) => this.expr(a));
    const impl = spec.impl;
    if (args.length === 0) return (env) => impl(env, []);
    return (env, doc) =>
      impl(
        env,
        args.map((f) => f(env, doc)),
      );
  }

  private cast(e: Extract<Expr, { type: 'cast' }>): Fn {
    const f = this.expr(e.operand);
    const keep = this.keepWholeDecimal;
    switch (e.to) {
      case 'STRING':
      case 'NVARCHAR':
      case 'TEXT':
      case 'NTEXT':
      case 'VARCHAR':
        return (env, doc) => toText(f(env, doc));
      case 'INT':
      case 'INTEGER':
        // [D] casting a Decimal to Int rounds down; Boolean true/false -> 1/0.
        return (env, doc) => {
          const v = f(env, doc);
          if (typeof v === 'boolean') return v ? 1 : 0;
          const n = toNumber(v);
          return n === undefined ? undefined : Math.floor(n);
        };
      case 'DECIMAL':
      case 'BOOL':
      case 'BOOLEAN':
        if (this.version === '2015-10-08')
          throw new SqlParseError(E.SqlCastRequiresV2.describe({ type: e.to }), e.pos);
        if (e.to === 'DECIMAL') return this.castDecimal(f, keep);
        return (env, doc) => {
          const v = f(env, doc);
          const n = numeric(v);
          if (n !== undefined) return n !== 0; // [D] 0 -> false, anything else -> true
          return toBoolean(v);
        };
      case 'DOUBLE':
        return this.castDecimal(f, keep);
      default:
        throw new SqlParseError(E.SqlUnknownCastType.describe({ type: e.to }), e.pos);
    }
  }

  private castDecimal(f: Fn, keep: boolean): Fn {
    return (env, doc) => {
      const v = f(env, doc);
      if (typeof v === 'boolean') return numberResult(v ? 1 : 0, true, keep);
      const n = toNumber(v);
      return n === undefined ? undefined : numberResult(n, true, keep);
    };
  }

  private caseExpr(e: Extract<Expr, { type: 'case' }>): Fn {
    const subject = e.subject ? this.expr(e.subject) : null;
    const whens = e.whens.map((w) => ({ when: this.expr(w.when), then: this.expr(w.then) }));
    const otherwise = e.otherwise ? this.expr(e.otherwise) : null;
    return (env, doc) => {
      if (subject) {
        const s = subject(env, doc);
        if (s === undefined) return undefined; // [D] an Undefined input gives Undefined
        for (const w of whens) if (sqlEquals(s, w.when(env, doc)) === true) return w.then(env, doc);
      } else {
        for (const w of whens) if (w.when(env, doc) === true) return w.then(env, doc);
      }
      return otherwise ? otherwise(env, doc) : undefined;
    };
  }

  /** `(SELECT ... FROM arrayExpr WHERE ...)`: runs per array element, with the element as the document. */
  private subquery(q: Query): Fn {
    const from = this.expr(q.from!);
    const where = q.where ? this.expr(q.where) : null;
    const select = this.projection(q, false);
    return (env, doc) => {
      const src = from(env, doc);
      if (!Array.isArray(src)) return undefined;
      const out: SqlValue[] = [];
      for (const el of src) {
        if (where && where(env, el) !== true) continue;
        const v = select(env, el);
        if (v !== undefined) out.push(v);
      }
      return out;
    };
  }
}

const arity = (min: number, max: number) =>
  min === max
    ? `${min} argument${min === 1 ? '' : 's'}`
    : max === Infinity
      ? `at least ${min} arguments`
      : `${min} to ${max} arguments`;

/** Output key of an unaliased SELECT item: the attribute's last name, the function's name, else `_<n>`. */
function defaultName(e: Expr, idx: number): string {
  if (e.type === 'ident' || e.type === 'member') return e.name;
  if (e.type === 'call') return e.name;
  if (e.type === 'cast') return defaultName(e.operand, idx);
  return `_${idx + 1}`;
}

function setPath(out: Record<string, SqlValue>, path: readonly string[], value: SqlValue): void {
  let o = out;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (!isObject(o[k])) o[k] = {};
    o = o[k] as Record<string, SqlValue>;
  }
  o[path[path.length - 1]!] = value;
}
