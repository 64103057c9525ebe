/** The rule SQL syntax tree. Every node carries `pos`, its 0-based offset in the statement. */
export type Expr =
  | { readonly type: 'literal'; readonly pos: number; readonly value: unknown; readonly decimal?: boolean }
  /** A bare identifier: an attribute of the current document (the payload, or the element in a nested query). */
  | { readonly type: 'ident'; readonly pos: number; readonly name: string }
  | { readonly type: 'member'; readonly pos: number; readonly object: Expr; readonly name: string }
  | { readonly type: 'index'; readonly pos: number; readonly object: Expr; readonly index: Expr }
  /** `*` as a function argument (the whole payload, e.g. `encode(*, 'base64')`). */
  | { readonly type: 'star'; readonly pos: number }
  | { readonly type: 'unary'; readonly pos: number; readonly op: '-' | 'NOT'; readonly operand: Expr }
  | {
      readonly type: 'binary';
      readonly pos: number;
      readonly op: BinaryOp;
      readonly left: Expr;
      readonly right: Expr;
    }
  | { readonly type: 'call'; readonly pos: number; readonly name: string; readonly args: readonly Expr[] }
  | { readonly type: 'cast'; readonly pos: number; readonly operand: Expr; readonly to: string }
  | {
      readonly type: 'case';
      readonly pos: number;
      /** `CASE v WHEN ...` (simple) when set; `CASE WHEN cond ...` (searched) when null. */
      readonly subject: Expr | null;
      readonly whens: ReadonlyArray<{ readonly when: Expr; readonly then: Expr }>;
      readonly otherwise: Expr | null;
    }
  | {
      readonly type: 'object';
      readonly pos: number;
      readonly entries: ReadonlyArray<{ readonly key: string; readonly value: Expr }>;
    }
  | { readonly type: 'array'; readonly pos: number; readonly items: readonly Expr[] }
  | { readonly type: 'subquery'; readonly pos: number; readonly query: Query };

export type BinaryOp =
  'AND' | 'OR' | '=' | '<>' | '<' | '<=' | '>' | '>=' | '+' | '-' | '*' | '/' | '%' | 'IN';

export type SelectItem =
  | { readonly kind: 'star'; readonly pos: number }
  | {
      readonly kind: 'expr';
      readonly pos: number;
      readonly expr: Expr;
      readonly alias: readonly string[] | null;
    };

export interface Query {
  readonly pos: number;
  /** `SELECT VALUE expr` when set. */
  readonly value: Expr | null;
  readonly items: readonly SelectItem[];
  /** Top level: the FROM topic filter (null when omitted, for Basic Ingest). */
  readonly topicFilter: string | null;
  /** Nested query: the FROM expression (an array attribute). */
  readonly from: Expr | null;
  readonly where: Expr | null;
}
