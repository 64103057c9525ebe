import { E } from '../../errors/index.js';
import { SqlParseError } from './errors.js';

export type TokenKind = 'ident' | 'number' | 'string' | 'op' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** Identifier text as written, the operator, the decoded string, or the number's source text. */
  readonly text: string;
  /** 0-based offset of the token's first character in the statement. */
  readonly pos: number;
  /** For identifiers: upper-cased text, to compare with keywords. */
  readonly upper: string;
  /** For identifiers: true when written in double quotes or backticks (never a keyword). */
  readonly quoted?: boolean;
}

const OPERATORS = [
  '<>',
  '!=',
  '<=',
  '>=',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '(',
  ')',
  ',',
  '.',
  '[',
  ']',
  '{',
  '}',
  ':',
];
const isIdentStart = (c: string) => /[A-Za-z_$]/.test(c);
const isIdentPart = (c: string) => /[A-Za-z0-9_$]/.test(c);
const isDigit = (c: string) => c >= '0' && c <= '9';

/**
 * Split a rule SQL statement into tokens. Strings are single-quoted (`''` or `\'` escapes a quote);
 * double-quoted text is also a string literal, as in AWS's `get(obj, "key")` examples.
 */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const start = i;
    if (isIdentStart(c)) {
      while (i < n && isIdentPart(sql[i]!)) i++;
      const text = sql.slice(start, i);
      tokens.push({ kind: 'ident', text, pos: start, upper: text.toUpperCase() });
      continue;
    }
    if (isDigit(c) || (c === '.' && i + 1 < n && isDigit(sql[i + 1]!))) {
      while (i < n && isDigit(sql[i]!)) i++;
      if (sql[i] === '.' && i + 1 < n && isDigit(sql[i + 1]!)) {
        i++;
        while (i < n && isDigit(sql[i]!)) i++;
      }
      if ((sql[i] === 'e' || sql[i] === 'E') && /^[eE][+-]?\d/.test(sql.slice(i, i + 3))) {
        i++;
        if (sql[i] === '+' || sql[i] === '-') i++;
        while (i < n && isDigit(sql[i]!)) i++;
      }
      if (i < n && isIdentStart(sql[i]!))
        throw new SqlParseError(E.SqlInvalidNumber.describe({ text: sql.slice(start, i + 1) }), start);
      tokens.push({ kind: 'number', text: sql.slice(start, i), pos: start, upper: '' });
      continue;
    }
    if (c === "'" || c === '"') {
      let out = '';
      i++;
      for (;;) {
        if (i >= n) throw new SqlParseError(E.SqlUnterminatedString.describe(), start);
        const d = sql[i]!;
        if (d === '\\' && i + 1 < n) {
          const e = sql[i + 1]!;
          out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          i += 2;
          continue;
        }
        if (d === c) {
          if (sql[i + 1] === c) {
            out += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        out += d;
        i++;
      }
      tokens.push({ kind: 'string', text: out, pos: start, upper: '' });
      continue;
    }
    if (c === '`') {
      const end = sql.indexOf('`', i + 1);
      if (end < 0) throw new SqlParseError(E.SqlUnterminatedIdentifier.describe(), start);
      const text = sql.slice(i + 1, end);
      i = end + 1;
      tokens.push({ kind: 'ident', text, pos: start, upper: text.toUpperCase(), quoted: true });
      continue;
    }
    const op = OPERATORS.find((o) => sql.startsWith(o, i));
    if (!op) throw new SqlParseError(E.SqlUnexpectedCharacter.describe({ char: c }), start);
    i += op.length;
    tokens.push({ kind: 'op', text: op === '!=' ? '<>' : op, pos: start, upper: '' });
  }
  tokens.push({ kind: 'eof', text: '', pos: n, upper: '' });
  return tokens;
}
