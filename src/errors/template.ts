/**
 * Message templates with typed, named placeholders: `{name}` takes a string, `{name:number}` a number and
 * `{name:list}` a list of strings (joined with ", "). Braces around anything but an identifier are text
 * (`{actionType, resources}`, `[\w]{1,128}`). The placeholder types are read off the template literal
 * type, so `E.PolicyNotFound({ policyName })` is checked by the compiler; the same grammar is parsed at
 * runtime by `placeholders` (errors.test.ts holds the two to each other).
 */
import type { ErrorCode } from './codes.js';
import { ThingsteadError } from './error.js';

export type PlaceholderType = 'string' | 'number' | 'list';
type ArgOf<T extends string> = T extends 'number' ? number : T extends 'list' ? readonly string[] : string;

type Digit = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9';
type Lower = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'i' | 'j' | 'k' | 'l' | 'm';
type Lower2 = 'n' | 'o' | 'p' | 'q' | 'r' | 's' | 't' | 'u' | 'v' | 'w' | 'x' | 'y' | 'z';
type Letter = Lower | Lower2 | Uppercase<Lower | Lower2> | '_';
type IdentTail<P extends string> = P extends ''
  ? true
  : P extends `${infer C}${infer R}`
    ? C extends Letter | Digit
      ? IdentTail<R>
      : false
    : false;
/** `[A-Za-z_][A-Za-z0-9_]*`, as PLACEHOLDER reads it. */
type IsIdent<P extends string> = P extends `${infer C}${infer R}`
  ? C extends Letter
    ? IdentTail<R>
    : false
  : false;
/** The text after the last `{` (in `${{name}}` the placeholder is the inner `{name}`). */
type LastOpen<P extends string> = P extends `${string}{${infer Q}` ? LastOpen<Q> : P;
type Slot<P extends string> = P extends `${infer N}:${infer T extends PlaceholderType}`
  ? IsIdent<N> extends true
    ? [N, T]
    : never
  : IsIdent<P> extends true
    ? [P, 'string']
    : never;
/** The placeholders of a template as [name, type] pairs. */
export type Slots<S extends string> = S extends `${string}{${infer P}}${infer Rest}`
  ? Slot<LastOpen<P>> | Slots<Rest>
  : never;
/** The argument object a template takes: `{ policyName: string; versionId: string }`. */
export type TemplateArgs<S extends string> = { readonly [E in Slots<S> as E[0]]: ArgOf<E[1]> };

/** Extra modeled members copied into the response body (resourceId, resourceArn). */
export type Extra = Record<string, unknown>;
type CallArgs<S extends string> = [Slots<S>] extends [never]
  ? [extra?: Extra]
  : [args: TemplateArgs<S>, extra?: Extra];
type TextArgs<S extends string> = [Slots<S>] extends [never] ? [] : [args: TemplateArgs<S>];

/** A kind's message without the error, for error classes that add to it (SqlParseError, JsonLimitError). */
export interface Described<C extends ErrorCode = ErrorCode> {
  readonly kind: string;
  readonly code: C;
  readonly message: string;
}

/** One message kind: call it to get the ThingsteadError to throw. */
export interface ErrorKind<C extends ErrorCode = ErrorCode, S extends string = string> {
  (...args: CallArgs<S>): ThingsteadError;
  readonly kind: string;
  readonly code: C;
  readonly template: S;
  /** When it happens, for docs/errors.md. */
  readonly when: string;
  readonly placeholders: readonly Placeholder[];
  /** The text alone. */
  describe(...args: TextArgs<S>): Described<C>;
}

export interface Placeholder {
  readonly name: string;
  readonly type: PlaceholderType;
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)(?::(string|number|list))?\}/g;

/** The placeholders of a template, parsed at runtime with the grammar the types use. */
export function placeholders(template: string): Placeholder[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => ({
    name: m[1]!,
    type: (m[2] ?? 'string') as PlaceholderType,
  }));
}

/** Fill a template. A missing argument (only possible past a cast) is shown as `<name>`, never thrown. */
export function render(template: string, args: Readonly<Record<string, unknown>>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const v = args[name];
    if (v === undefined) return `<${name}>`;
    return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : String(JSON.stringify(v));
  });
}

/** A kind's definition: the catalog code, the template, and when it happens (for docs/errors.md). */
export type KindDef = readonly [code: ErrorCode, template: string, when: string];

type Kinds<D extends Record<string, KindDef>> = {
  readonly [K in keyof D]: ErrorKind<D[K][0], D[K][1]>;
};

/**
 * Turn definitions into kinds, as fastify's createError does for one code.
 * @example const E = defineKinds({ RuleNotFound: ['ResourceNotFound', 'Rule {ruleName} does not exist', '...'] });
 */
export function defineKinds<const D extends Record<string, KindDef>>(defs: D): Kinds<D> {
  const out: Record<string, ErrorKind> = {};
  for (const [kind, [code, template, when]] of Object.entries(defs)) {
    const slots = placeholders(template);
    const describe = (args: Readonly<Record<string, unknown>> = {}): Described => ({
      kind,
      code,
      message: render(template, args),
    });
    const raise = (...a: unknown[]): ThingsteadError => {
      const [args, extra] = (slots.length > 0 ? a : [{}, a[0]]) as [
        Record<string, unknown>,
        Extra | undefined,
      ];
      const err = new ThingsteadError(code, render(template, args), extra, kind);
      Error.captureStackTrace(err, raise);
      return err;
    };
    out[kind] = Object.assign(raise, { kind, code, template, when, placeholders: slots, describe });
  }
  return out as Kinds<D>;
}
