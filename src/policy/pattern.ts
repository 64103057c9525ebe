/**
 * IAM-style glob patterns with policy variables (reference §9.3, §9.4).
 *
 * `*` matches any run of characters including `/`; `?` matches exactly one character; MQTT `+` and `#`
 * are plain literals. `${name}` is a policy variable, `${*}`, `${?}`, `${$}` are literal escapes.
 *
 * A pattern is compiled once into parts (on policy change). Binding it to one connection substitutes
 * each variable's value as LITERAL text into the compiled parts: a value is never re-parsed, so a client
 * id such as `*` or `${iot:ClientId}` cannot widen a match.
 */

export type Part =
  | { readonly k: 'lit'; readonly s: string }
  | { readonly k: 'star' }
  | { readonly k: 'one' }
  | { readonly k: 'var'; readonly name: string };

/** A compiled matcher: `(text) => boolean`. Hot path: no allocation. */
export type Matcher = (text: string) => boolean;

export const NEVER: Matcher = () => false;
export const ALWAYS: Matcher = () => true;

const STAR = -1;
const ONE = -2;

/** Split a pattern into literal text, wildcards and variables. */
export function compilePattern(pattern: string): Part[] {
  const parts: Part[] = [];
  let lit = '';
  const flush = () => {
    if (lit) parts.push({ k: 'lit', s: lit });
    lit = '';
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '$' && pattern[i + 1] === '{') {
      const end = pattern.indexOf('}', i + 2);
      if (end > 0) {
        const name = pattern.slice(i + 2, end);
        if (name === '*' || name === '?' || name === '$') lit += name;
        else {
          flush();
          parts.push({ k: 'var', name });
        }
        i = end;
        continue;
      }
    }
    if (c === '*') {
      flush();
      parts.push({ k: 'star' });
    } else if (c === '?') {
      flush();
      parts.push({ k: 'one' });
    } else lit += c;
  }
  flush();
  return parts;
}

export function hasVariables(parts: readonly Part[]): boolean {
  return parts.some((p) => p.k === 'var');
}

/**
 * Substitute variables. `resolve` returns the literal value, or undefined when the variable cannot be
 * resolved; then the whole binding fails (returns null) and the caller decides what an unresolvable
 * pattern means (AWS leaves `${...}` as text, which in practice never matches).
 */
export function bindParts(
  parts: readonly Part[],
  resolve: (name: string) => string | undefined,
): Array<Exclude<Part, { k: 'var' }>> | null {
  const out: Array<Exclude<Part, { k: 'var' }>> = [];
  for (const p of parts) {
    if (p.k !== 'var') {
      out.push(p);
      continue;
    }
    const value = resolve(p.name);
    if (value === undefined) return null;
    if (value) out.push({ k: 'lit', s: value });
  }
  return out;
}

/** Build the fastest matcher for variable-free parts: equality, prefix, or the general glob. */
export function matcherFor(parts: ReadonlyArray<Exclude<Part, { k: 'var' }>>, ignoreCase = false): Matcher {
  const norm = (s: string) => (ignoreCase ? s.toLowerCase() : s);
  const codes: number[] = [];
  for (const p of parts) {
    if (p.k === 'star') {
      if (codes[codes.length - 1] !== STAR) codes.push(STAR);
    } else if (p.k === 'one') codes.push(ONE);
    else for (const ch of norm(p.s)) for (let j = 0; j < ch.length; j++) codes.push(ch.charCodeAt(j));
  }
  const wild = codes.filter((c) => c < 0).length;
  if (wild === 0) {
    const exact = String.fromCharCode(...codes);
    return ignoreCase ? (t) => t.toLowerCase() === exact : (t) => t === exact;
  }
  if (wild === 1 && codes[codes.length - 1] === STAR) {
    const prefix = String.fromCharCode(...codes.slice(0, -1));
    if (prefix === '') return ALWAYS;
    return ignoreCase ? (t) => t.toLowerCase().startsWith(prefix) : (t) => t.startsWith(prefix);
  }
  const p = Int32Array.from(codes);
  return ignoreCase ? (t) => globMatch(p, t.toLowerCase()) : (t) => globMatch(p, t);
}

/**
 * Iterative wildcard match with single-star backtracking: O(len(p) * len(s)) worst case, no recursion,
 * no regular expressions (a hostile pattern or topic cannot cause catastrophic backtracking).
 */
function globMatch(p: Int32Array, s: string): boolean {
  const m = p.length;
  const n = s.length;
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < n) {
    const c = pi < m ? p[pi]! : 0;
    if (pi < m && (c === ONE || c === s.charCodeAt(si))) {
      pi++;
      si++;
    } else if (pi < m && c === STAR) {
      starP = pi++;
      starS = si;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else return false;
  }
  while (pi < m && p[pi] === STAR) pi++;
  return pi === m;
}

/** Compile a variable-free glob (actions, condition values without variables). */
export function globMatcher(pattern: string, ignoreCase = false): Matcher {
  const bound = bindParts(compilePattern(pattern), () => undefined);
  return bound ? matcherFor(bound, ignoreCase) : NEVER;
}
