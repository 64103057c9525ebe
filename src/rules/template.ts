import { E } from '../errors/index.js';
import {
  compileSql,
  SqlParseError,
  toText,
  type CompiledSql,
  type ParsedPayload,
  type SqlContext,
} from './sql/index.js';

/**
 * A substitution template (`${expr}` in action fields, reference §10.4): expressions are rule SQL evaluated
 * against the ORIGINAL payload (SELECT aliases are not visible). `$$` writes a literal `$` (republish to
 * `$$aws/...`). Undefined renders as the empty string. Compiled once, at rule creation.
 */
export interface Template {
  readonly source: string;
  readonly dynamic: boolean;
  render(ctx: SqlContext, parsed: ParsedPayload): string;
  /** A template that is exactly one `${expr}` keeps the expression's SQL value (number, boolean, object). */
  renderValue(ctx: SqlContext, parsed: ParsedPayload): unknown;
}

type Part = string | CompiledSql;

/** @example compileTemplate('things/${topic(2)}/out', '2016-03-23').render(ctx, parsed) */
export function compileTemplate(source: string, version: string, field = 'template'): Template {
  const parts: Part[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '$' && source[i + 1] === '$') {
      text += '$';
      i += 2;
      continue;
    }
    if (c === '$' && source[i + 1] === '{') {
      const end = closingBrace(source, i + 2);
      if (end < 0) throw new SqlParseError(E.SqlTemplateUnterminated.describe({ field, source }), i);
      const expr = source.slice(i + 2, end);
      if (text) parts.push(text);
      text = '';
      try {
        parts.push(compileSql(`SELECT VALUE ${expr} FROM '#'`, version));
      } catch (err) {
        if (err instanceof SqlParseError)
          throw new SqlParseError(
            E.SqlTemplateExpression.describe({ field, source, detail: err.detail }),
            i + 2 + Math.max(0, err.position - 13),
          );
        throw err;
      }
      i = end + 1;
      continue;
    }
    text += c;
    i++;
  }
  if (text) parts.push(text);
  const dynamic = parts.some((p) => typeof p !== 'string');
  const single = parts.length === 1 && typeof parts[0] !== 'string' ? (parts[0] as CompiledSql) : null;
  const template: Template = {
    source,
    dynamic,
    renderValue(ctx, parsed) {
      if (!single) return template.render(ctx, parsed);
      const r = single.evaluate(ctx, parsed);
      return r.matched ? r.value : undefined;
    },
    render(ctx, parsed) {
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') out += p;
        else {
          const r = p.evaluate(ctx, parsed);
          out += r.matched ? (toText(r.value) ?? '') : '';
        }
      }
      return out;
    },
  };
  return template;
}

/** Index of the `}` closing an expression, skipping quoted strings and nested braces. */
function closingBrace(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'" || c === '"') {
      const close = s.indexOf(c, i + 1);
      if (close < 0) return -1;
      i = close;
    } else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}
