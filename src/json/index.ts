/**
 * Bounded JSON: the one guard for JSON text that comes from outside (MQTT payloads read by rules, API
 * bodies, rule test payloads, registry attributes, time-series writes).
 *
 * Contract: `jsonDepth` and `parseJsonBounded` never recurse, so a hostile document cannot overflow the
 * stack here; and a value returned by `parseJsonBounded` nests at most `maxDepth` levels, so every
 * recursive walk downstream (SQL evaluation, re-serialisation, JSON.stringify, schema validation) is
 * bounded by the checked depth. V8's JSON.parse is iterative; JSON.stringify and our walkers are not.
 * Imports: errors.
 */
import { E, ThingsteadError, type Described } from '../errors/index.js';

export interface JsonLimits {
  /** Deepest nesting of arrays and objects accepted (`{}` and `[]` are depth 1, a scalar depth 0). */
  readonly maxDepth: number;
  /** Largest text accepted, in UTF-8 bytes (or string length for string input); absent: no cap here. */
  readonly maxBytes?: number;
}

/** The nesting limit used when a caller has no configured one (the schema's `limits.maxJsonDepth` default). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The nesting depth of JSON text, scanned iteratively (strings skipped, escapes honoured) and stopped
 * early once `stopAbove` is passed. Valid or not, the answer bounds what JSON.parse would build.
 * @example jsonDepth('{"a":[1,2]}') === 2
 */
export function jsonDepth(text: string | Buffer, stopAbove = Infinity): number {
  const isBuffer = typeof text !== 'string';
  const n = text.length;
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < n; i++) {
    const c = isBuffer ? text[i]! : text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return max;
}

/** Why `parseJsonBounded` refused a text; `limit` names the limit that was passed. */
export class JsonLimitError extends ThingsteadError {
  constructor(
    readonly limit: 'maxDepth' | 'maxBytes',
    problem: Described<'EntityTooLarge' | 'InvalidRequest'>,
  ) {
    super(problem.code, problem.message, {}, problem.kind);
  }
}

/**
 * The depth check alone: throws JsonLimitError (InvalidRequestException) when the text nests deeper than
 * `maxDepth`. `what` names the document in the message ("The request body", "The payload").
 */
export function assertJsonDepth(text: string | Buffer, maxDepth: number, what = 'The JSON document'): void {
  if (jsonDepth(text, maxDepth) > maxDepth)
    throw new JsonLimitError('maxDepth', E.JsonTooDeep.describe({ what, maxDepth }));
}

/**
 * JSON.parse behind the size and depth limits. Throws JsonLimitError when a limit is passed and
 * SyntaxError (as JSON.parse does) when the text is not JSON.
 * @example const doc = parseJsonBounded(body, { maxDepth: config.limits.maxJsonDepth }, 'The request body');
 */
export function parseJsonBounded(
  text: string | Buffer,
  limits: JsonLimits,
  what = 'The JSON document',
): unknown {
  if (limits.maxBytes !== undefined && text.length > limits.maxBytes)
    throw new JsonLimitError('maxBytes', E.JsonTooLarge.describe({ what, maxBytes: limits.maxBytes }));
  assertJsonDepth(text, limits.maxDepth, what);
  return JSON.parse(typeof text === 'string' ? text : text.toString('utf8')) as unknown;
}

/**
 * Depth of an already-built value, walked iteratively (for values that did not come from our parser,
 * such as a decoded API body member). Stops early once `stopAbove` is passed.
 */
export function valueDepth(value: unknown, stopAbove = Infinity): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null || Buffer.isBuffer(v)) continue;
    const depth = d + 1;
    if (depth > max) {
      max = depth;
      if (max > stopAbove) return max;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth]);
  }
  return max;
}
