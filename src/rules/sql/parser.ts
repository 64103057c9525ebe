import type { BinaryOp, Expr, Query, SelectItem } from './ast.js';
import { E } from '../../errors/index.js';
import { SqlParseError } from './errors.js';
import { tokenize, type Token } from './tokenizer.js';

/** `awsIotSqlVersion` values. `beta` is treated as the newest version. */
export type SqlVersion = '2015-10-08' | '2016-03-23' | 'beta';
export const SQL_VERSIONS: readonly SqlVersion[] = ['2015-10-08', '2016-03-23', 'beta'];
/** AWS's default when the field is omitted (CLI/SDK), reference §10.2. */
export const DEFAULT_SQL_VERSION: SqlVersion = '2015-10-08';

/** Words that end an expression or start a clause; they cannot be bare attribute names. */
const RESERVED = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AS',
  'AND',
  'OR',
  'NOT',
  'CASE',
  'WHEN',
  'THEN',
  'ELSE',
  'END',
  'IN',
]);
const COMPARISON = new Set(['=', '<>', '<', '<=', '>', '>=']);

/**
 * Parse a rule SQL statement (reference §10.1) into an AST with positions. Features that AWS documents as
 * 2016-03-23 only (nested queries, object/array literals) are refused under 2015-10-08.
 * @example parseSql("SELECT temp FROM 'dev/+/data' WHERE temp > 50", '2016-03-23')
 */
export function parseSql(sql: string, version: SqlVersion = DEFAULT_SQL_VERSION): Query {
  const p = new Parser(tokenize(sql), version);
  const q = p.query(true);
  p.expectEof();
  checkTreeDepth(q);
  return q;
}

/**
 * Deepest expression nesting a statement may have, both while parsing (parentheses, NOT, unary minus,
 * nested queries, function arguments: each is a recursion of this parser) and in the resulting tree
 * (`a.b.c...` and `a + b + ...` chains, which the compiler and the evaluation walk recursively). AWS does not
 * document a limit; 128 is far beyond hand-written rules and keeps every walk far from V8's stack limit.
 */
export const MAX_SQL_DEPTH = 128;

/** How a token is named in "found ..." (SqlExpected, SqlCaseWithoutWhen). */
const found = (t: Token) => (t.kind === 'eof' ? 'end of statement' : `'${t.text}'`);

const tooDeep = (pos: number) => new SqlParseError(E.SqlTooDeep.describe({ max: MAX_SQL_DEPTH }), pos);

/** The tree's depth, walked iteratively; throws at the first node deeper than MAX_SQL_DEPTH. */
function checkTreeDepth(root: Query): void {
  const stack: Array<[Expr | Query, number]> = [[root, 0]];
  const push = (depth: number, ...nodes: Array<Expr | Query | null | undefined>) => {
    for (const n of nodes) if (n) stack.push([n, depth]);
  };
  while (stack.length > 0) {
    const [node, d] = stack.pop()!;
    const depth = d + 1;
    if (depth > MAX_SQL_DEPTH) throw tooDeep(node.pos);
    if (!('type' in node)) {
      push(depth, node.value, node.from, node.where);
      for (const item of node.items) if (item.kind === 'expr') push(depth, item.expr);
      continue;
    }
    switch (node.type) {
      case 'member':
        push(depth, node.object);
        break;
      case 'index':
        push(depth, node.object, node.index);
        break;
      case 'unary':
      case 'cast':
        push(depth, node.operand);
        break;
      case 'binary':
        push(depth, node.left, node.right);
        break;
      case 'call':
        push(depth, ...node.args);
        break;
      case 'case':
        push(depth, node.subject, node.otherwise);
        for (const w of node.whens) push(depth, w.when, w.then);
        break;
      case 'object':
        for (const e of node.entries) push(depth, e.value);
        break;
      case 'array':
        push(depth, ...node.items);
        break;
      case 'subquery':
        push(depth, node.query);
        break;
      default:
        break;
    }
  }
}

class Parser {
  private i = 0;
  /** Current recursion depth of expr()/not()/unary(); bounded by MAX_SQL_DEPTH before recursing. */
  private depth = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly version: SqlVersion,
  ) {}

  private get tok(): Token {
    return this.tokens[this.i]!;
  }
  private peek(k = 1): Token {
    return this.tokens[Math.min(this.i + k, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.tok;
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  private isKw(word: string, t = this.tok): boolean {
    return t.kind === 'ident' && !t.quoted && t.upper === word;
  }
  private isOp(op: string, t = this.tok): boolean {
    return t.kind === 'op' && t.text === op;
  }
  /** SqlParseException: `expected` was due and `t` came instead. */
  private fail(expected: string, t = this.tok): never {
    throw new SqlParseError(E.SqlExpected.describe({ expected, found: found(t) }), t.pos);
  }
  private expectKw(word: string): Token {
    if (!this.isKw(word)) this.fail(word);
    return this.next();
  }
  private expectOp(op: string): Token {
    if (!this.isOp(op)) this.fail(`'${op}'`);
    return this.next();
  }
  private requireV2(feature: string, pos: number): void {
    if (this.version === '2015-10-08') throw new SqlParseError(E.SqlRequiresV2.describe({ feature }), pos);
  }
  /** Run one recursive step, refusing it (SqlParseException at `pos`) past MAX_SQL_DEPTH. */
  private nested<T>(pos: number, step: () => T): T {
    if (++this.depth > MAX_SQL_DEPTH) throw tooDeep(pos);
    try {
      return step();
    } finally {
      this.depth--;
    }
  }
  expectEof(): void {
    if (this.tok.kind !== 'eof') this.fail('end of statement');
  }

  query(top: boolean): Query {
    const pos = this.expectKw('SELECT').pos;
    let value: Expr | null = null;
    const items: SelectItem[] = [];
    // `SELECT VALUE expr`; `SELECT value FROM ...` (an attribute named value) stays an attribute.
    if (this.isKw('VALUE') && !this.endsItem(this.peek())) {
      this.next();
      value = this.expr();
    } else {
      do items.push(this.selectItem());
      while (this.isOp(',') && this.next());
    }
    let topicFilter: string | null = null;
    let from: Expr | null = null;
    if (this.isKw('FROM')) {
      this.next();
      if (top) {
        const t = this.tok;
        if (t.kind !== 'string') this.fail('a quoted topic filter after FROM');
        this.next();
        topicFilter = t.text;
        validateFilter(t.text, t.pos);
      } else from = this.expr();
    } else if (!top) this.fail('FROM in nested query');
    else if (!this.isKw('WHERE') && this.tok.kind !== 'eof' && !this.isOp(')')) this.fail('FROM');
    const where = this.isKw('WHERE') ? (this.next(), this.expr()) : null;
    return { pos, value, items, topicFilter, from, where };
  }

  private endsItem(t: Token): boolean {
    return (
      t.kind === 'eof' ||
      this.isKw('FROM', t) ||
      this.isKw('AS', t) ||
      this.isOp(',', t) ||
      this.isOp('.', t) ||
      this.isOp(')', t)
    );
  }

  private selectItem(): SelectItem {
    const t = this.tok;
    if (this.isOp('*')) {
      this.next();
      return { kind: 'star', pos: t.pos };
    }
    const expr = this.expr();
    let alias: string[] | null = null;
    if (this.isKw('AS')) {
      this.next();
      alias = [this.aliasPart()];
      while (this.isOp('.')) {
        this.next();
        alias.push(this.aliasPart());
      }
    }
    return { kind: 'expr', pos: t.pos, expr, alias };
  }

  private aliasPart(): string {
    const t = this.tok;
    if (t.kind === 'ident' || t.kind === 'string') {
      this.next();
      return t.text;
    }
    return this.fail('an alias name after AS');
  }

  expr(): Expr {
    return this.nested(this.tok.pos, () => this.or());
  }
  private or(): Expr {
    let left = this.and();
    while (this.isKw('OR')) {
      const t = this.next();
      left = { type: 'binary', pos: t.pos, op: 'OR', left, right: this.and() };
    }
    return left;
  }
  private and(): Expr {
    let left = this.not();
    while (this.isKw('AND')) {
      const t = this.next();
      left = { type: 'binary', pos: t.pos, op: 'AND', left, right: this.not() };
    }
    return left;
  }
  private not(): Expr {
    if (this.isKw('NOT')) {
      const t = this.next();
      return { type: 'unary', pos: t.pos, op: 'NOT', operand: this.nested(t.pos, () => this.not()) };
    }
    return this.comparison();
  }
  private comparison(): Expr {
    const left = this.additive();
    const t = this.tok;
    if (t.kind === 'op' && COMPARISON.has(t.text)) {
      this.next();
      return { type: 'binary', pos: t.pos, op: t.text as BinaryOp, left, right: this.additive() };
    }
    if (this.isKw('IN')) {
      this.next();
      return { type: 'binary', pos: t.pos, op: 'IN', left, right: this.additive() };
    }
    return left;
  }
  private additive(): Expr {
    let left = this.multiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const t = this.next();
      left = { type: 'binary', pos: t.pos, op: t.text as BinaryOp, left, right: this.multiplicative() };
    }
    return left;
  }
  private multiplicative(): Expr {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const t = this.next();
      left = { type: 'binary', pos: t.pos, op: t.text as BinaryOp, left, right: this.unary() };
    }
    return left;
  }
  private unary(): Expr {
    if (this.isOp('-')) {
      const t = this.next();
      const operand = this.nested(t.pos, () => this.unary());
      if (operand.type === 'literal' && typeof operand.value === 'number')
        return { ...operand, pos: t.pos, value: -operand.value };
      return { type: 'unary', pos: t.pos, op: '-', operand };
    }
    if (this.isOp('+')) {
      const t = this.next();
      return this.nested(t.pos, () => this.unary());
    }
    return this.postfix();
  }
  private postfix(): Expr {
    let e = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        const dot = this.next();
        const t = this.tok;
        if (t.kind !== 'ident') this.fail('an attribute name after "."');
        this.next();
        e = { type: 'member', pos: dot.pos, object: e, name: t.text };
      } else if (this.isOp('[')) {
        const b = this.next();
        const index = this.expr();
        this.expectOp(']');
        e = { type: 'index', pos: b.pos, object: e, index };
      } else return e;
    }
  }

  private primary(): Expr {
    const t = this.tok;
    switch (t.kind) {
      case 'number': {
        this.next();
        const decimal = /[.eE]/.test(t.text);
        return { type: 'literal', pos: t.pos, value: Number(t.text), decimal };
      }
      case 'string':
        this.next();
        return { type: 'literal', pos: t.pos, value: t.text };
      case 'op':
        return this.primaryOp(t);
      case 'ident':
        return this.primaryIdent(t);
      default:
        return this.fail('an expression');
    }
  }

  private primaryOp(t: Token): Expr {
    if (t.text === '*') {
      // `*` as a value: the whole payload (e.g. `SELECT VALUE *`, `${*}` in templates).
      this.next();
      return { type: 'star', pos: t.pos };
    }
    if (t.text === '(') {
      this.next();
      if (this.isKw('SELECT')) {
        this.requireV2('Nested queries', t.pos);
        const query = this.query(false);
        this.expectOp(')');
        return { type: 'subquery', pos: t.pos, query };
      }
      const e = this.expr();
      this.expectOp(')');
      return e;
    }
    if (t.text === '{') {
      this.requireV2('Object literals', t.pos);
      this.next();
      const entries: Array<{ key: string; value: Expr }> = [];
      if (!this.isOp('}')) {
        do {
          const k = this.tok;
          if (k.kind !== 'string' && k.kind !== 'ident') this.fail('an object key');
          this.next();
          this.expectOp(':');
          entries.push({ key: k.text, value: this.expr() });
        } while (this.isOp(',') && this.next());
      }
      this.expectOp('}');
      return { type: 'object', pos: t.pos, entries };
    }
    if (t.text === '[') {
      this.requireV2('Array literals', t.pos);
      this.next();
      const items: Expr[] = [];
      if (!this.isOp(']')) {
        do items.push(this.expr());
        while (this.isOp(',') && this.next());
      }
      this.expectOp(']');
      return { type: 'array', pos: t.pos, items };
    }
    return this.fail('an expression');
  }

  private primaryIdent(t: Token): Expr {
    if (!t.quoted) {
      if (t.upper === 'TRUE' || t.upper === 'FALSE') {
        this.next();
        return { type: 'literal', pos: t.pos, value: t.upper === 'TRUE' };
      }
      if (t.upper === 'NULL') {
        this.next();
        return { type: 'literal', pos: t.pos, value: null };
      }
      if (t.upper === 'CASE') return this.caseExpr();
      if (RESERVED.has(t.upper)) this.fail('an expression');
    }
    this.next();
    if (this.isOp('(') && !t.quoted) {
      this.next();
      const name = t.text.toLowerCase();
      if (name === 'cast') {
        const operand = this.expr();
        this.expectKw('AS');
        const ty = this.tok;
        if (ty.kind !== 'ident') this.fail('a type name after AS');
        this.next();
        this.expectOp(')');
        return { type: 'cast', pos: t.pos, operand, to: ty.upper };
      }
      const args: Expr[] = [];
      if (!this.isOp(')')) {
        do {
          if (this.isOp('*') && (this.isOp(',', this.peek()) || this.isOp(')', this.peek()))) {
            args.push({ type: 'star', pos: this.next().pos });
          } else args.push(this.expr());
        } while (this.isOp(',') && this.next());
      }
      this.expectOp(')');
      return { type: 'call', pos: t.pos, name, args };
    }
    return { type: 'ident', pos: t.pos, name: t.text };
  }

  private caseExpr(): Expr {
    const pos = this.next().pos;
    const subject = this.isKw('WHEN') ? null : this.expr();
    const whens: Array<{ when: Expr; then: Expr }> = [];
    while (this.isKw('WHEN')) {
      this.next();
      const when = this.expr();
      this.expectKw('THEN');
      whens.push({ when, then: this.expr() });
    }
    if (whens.length === 0)
      throw new SqlParseError(E.SqlCaseWithoutWhen.describe({ found: found(this.tok) }), this.tok.pos);
    const otherwise = this.isKw('ELSE') ? (this.next(), this.expr()) : null;
    this.expectKw('END');
    return { type: 'case', pos, subject, whens, otherwise };
  }
}

/** An MQTT topic filter: `#` only as the last whole level, `+` only as a whole level. */
function validateFilter(filter: string, pos: number): void {
  if (filter.length === 0) throw new SqlParseError(E.SqlEmptyTopicFilter.describe(), pos);
  const levels = filter.split('/');
  levels.forEach((level, idx) => {
    if (level.includes('#') && (level !== '#' || idx !== levels.length - 1))
      throw new SqlParseError(E.SqlTopicFilterHash.describe({ filter }), pos);
    if (level.includes('+') && level !== '+')
      throw new SqlParseError(E.SqlTopicFilterPlus.describe({ filter }), pos);
  });
}
