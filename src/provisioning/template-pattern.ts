/**
 * AllowedPattern without catastrophic backtracking. JavaScript's RegExp backtracks and has no time limit,
 * and the value a pattern is tested against comes from a device (RegisterThing parameters), so a template
 * pattern is checked once, when the template is parsed (created, updated, or read back to provision), and
 * refused with the reason when its shape can take super-linear time:
 *
 * - longer than MAX_PATTERN_LENGTH characters;
 * - a backreference (`\1`, `\k<name>`): matching with one is NP-hard in general;
 * - a repeated group (`*`, `+`, `{n,m}` with m > 1) whose body holds a quantifier or an alternation:
 *   `(a+)+`, `(a|aa)*`, `(\w+\s?)*` (exponential: the ways to split the input multiply);
 * - two unbounded quantifiers with nothing required between them: `\d+\d*`, `.*.*` (polynomial);
 * - more than MAX_UNBOUNDED unbounded quantifiers (`*`, `+`, `{n,}`): each one can multiply the work by the
 *   input's length.
 *
 * What remains is at worst polynomial of degree MAX_UNBOUNDED in the value's length, and a value longer
 * than MAX_MATCHED_LENGTH is refused before it is matched, which bounds a match to well under a second.
 * Strict on purpose: `(SN|PN)-[0-9]+` passes, `(ab|cd)+` does not (write it without the repeated group,
 * or as a character class where it is one).
 */

/** Longest AllowedPattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 512;
/** Most unbounded quantifiers (`*`, `+`, `{n,}`) one pattern may hold. */
export const MAX_UNBOUNDED = 3;
/** Longest parameter value tested against an AllowedPattern, in characters; longer ones are refused. */
export const MAX_MATCHED_LENGTH = 1024;

interface Group {
  /** The body holds a quantifier (directly or in a nested group). */
  quantified: boolean;
  /** The body holds an alternation at its own level or below. */
  alternation: boolean;
}

type Quantifier = { readonly end: number; readonly repeats: boolean; readonly unbounded: boolean };

/** The quantifier starting at `i`, if any: where it ends, whether it repeats (max > 1), whether unbounded. */
function quantifierAt(p: string, i: number): Quantifier | null {
  const c = p[i];
  let q: Quantifier | null = null;
  if (c === '*' || c === '+') q = { end: i + 1, repeats: true, unbounded: true };
  else if (c === '?') q = { end: i + 1, repeats: false, unbounded: false };
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (m) {
      const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
      q = { end: i + m[0].length, repeats: max > 1, unbounded: max === Infinity };
    }
  }
  if (q && p[q.end] === '?') q = { ...q, end: q.end + 1 }; // lazy: same cost
  return q;
}

/**
 * Why `pattern` could backtrack catastrophically, or null when its shape is safe (see the file comment).
 * Call it on a pattern that compiles. @example patternProblem('(a+)+$') // 'a repeated group ...'
 */
export function patternProblem(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN_LENGTH)
    return `it is longer than ${MAX_PATTERN_LENGTH} characters (${pattern.length})`;
  const stack: Group[] = [{ quantified: false, alternation: false }];
  let unbounded = 0;
  /** The last atom took an unbounded quantifier and nothing required has come since. */
  let openEnded = false;

  /** An atom ended just before `i`: apply its quantifier (if any) and return where to go on. */
  const afterAtom = (i: number, group: Group | null): number | string => {
    const q = quantifierAt(pattern, i);
    if (!q) {
      openEnded = false;
      return i;
    }
    const top = stack[stack.length - 1]!;
    top.quantified = true;
    if (group && q.repeats && (group.quantified || group.alternation))
      return (
        `a repeated group holds ${group.quantified ? 'a quantifier' : 'an alternation'} ` +
        `(${pattern.slice(0, q.end)} ...), which can backtrack exponentially`
      );
    if (q.unbounded) {
      if (openEnded)
        return `two unbounded quantifiers follow each other with nothing required between them (at ${q.end})`;
      if (++unbounded > MAX_UNBOUNDED) return `it has more than ${MAX_UNBOUNDED} unbounded quantifiers`;
      openEnded = true;
    } else if (q.repeats || pattern[i] === '{') openEnded = false;
    return q.end;
  };

  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    let next: number | string;
    if (c === '\\') {
      const e = pattern[i + 1] ?? '';
      if (/[1-9]/.test(e) || (e === 'k' && pattern[i + 2] === '<'))
        return 'it uses a backreference, which can backtrack exponentially';
      // \u{...}, \p{...}: the braces belong to the escape.
      const braced = (e === 'u' || e === 'p' || e === 'P') && pattern[i + 2] === '{';
      const end = braced ? pattern.indexOf('}', i) + 1 : i + 2;
      next = afterAtom(end, null);
    } else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
      next = afterAtom(j + 1, null);
    } else if (c === '(') {
      stack.push({ quantified: false, alternation: false });
      // (?:, (?=, (?!, (?<=, (?<!, (?<name>: skip the group's prefix.
      let j = i + 1;
      if (pattern[j] === '?') {
        j++;
        if (pattern[j] === '<' && pattern[j + 1] !== '=' && pattern[j + 1] !== '!')
          j = pattern.indexOf('>', j) + 1;
        else j += pattern[j] === '<' ? 2 : 1;
      }
      next = j;
    } else if (c === ')') {
      const group = stack.pop()!;
      const parent = stack[stack.length - 1]!;
      parent.quantified ||= group.quantified;
      parent.alternation ||= group.alternation;
      next = afterAtom(i + 1, group);
    } else if (c === '|') {
      stack[stack.length - 1]!.alternation = true;
      openEnded = false;
      next = i + 1;
    } else if (c === '^' || c === '$') next = i + 1;
    else next = afterAtom(i + 1, null);
    if (typeof next === 'string') return next;
    i = next;
  }
  return null;
}
