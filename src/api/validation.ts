import { z } from 'zod';
import { E } from '../errors/index.js';
import { valueDepth } from '../json/index.js';

/**
 * Schema helpers that produce AWS's validation wording (the message AWS services return for model
 * constraint violations): `1 validation error detected: Value 'a b' at 'thingName' failed to satisfy
 * constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9:_-]+`.
 */

/** A string member with AWS's length and pattern constraints. */
export function awsString(
  options: { min?: number; max?: number; pattern?: RegExp; patternText?: string } = {},
) {
  let s = z.string({ error: 'Member must be a string' });
  if (options.min !== undefined)
    s = s.min(options.min, { error: `Member must have length greater than or equal to ${options.min}` });
  if (options.max !== undefined)
    s = s.max(options.max, { error: `Member must have length less than or equal to ${options.max}` });
  if (options.pattern)
    s = s.regex(options.pattern, {
      error: `Member must satisfy regular expression pattern: ${options.patternText ?? options.pattern.source}`,
    });
  return s;
}

/** An integer member within bounds. */
export function awsInt(min?: number, max?: number) {
  let n = z.number({ error: 'Member must be a number' }).int({ error: 'Member must be an integer' });
  if (min !== undefined) n = n.min(min, { error: `Member must have value greater than or equal to ${min}` });
  if (max !== undefined) n = n.max(max, { error: `Member must have value less than or equal to ${max}` });
  return n;
}

export const awsBool = () => z.boolean({ error: 'Member must be a boolean' });

/** `maxResults` of token-paginated lists (reference §3.9: 1..250). */
export const maxResults = (max = 250) => awsInt(1, max).optional();

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: any = input;
  for (const k of path) v = v == null ? undefined : v[k as any];
  return v;
}

/** The offending value as AWS quotes it; a deeply nested document is not serialised (stack-bounded). */
function show(v: unknown): string {
  if (v === undefined) return 'null';
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && valueDepth(v, 16) > 16)
    return Array.isArray(v) ? '[...]' : '{...}';
  return JSON.stringify(v) ?? typeof v;
}

/**
 * Validate `input` with `schema`, throwing InvalidRequestException with every violation listed the way AWS
 * lists them. Returns the parsed value.
 */
export function validateInput(schema: z.ZodType, input: unknown): Record<string, any> {
  const result = schema.safeParse(input);
  if (result.success) return result.data as Record<string, any>;
  const issues = result.error.issues;
  const parts = issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const value = valueAt(input, issue.path);
    if (issue.code === 'invalid_type' && value === undefined)
      return E.ViolationNull.describe({ member: path }).message;
    if (issue.code === 'unrecognized_keys')
      return E.ViolationUnknownMembers.describe({ members: issue.keys, path: path || '.' }).message;
    return E.ViolationConstraint.describe({ value: show(value), member: path, constraint: issue.message })
      .message;
  });
  throw parts.length === 1
    ? E.ValidationError({ violation: parts[0]! })
    : E.ValidationErrors({ count: parts.length, violations: parts.join('; ') });
}
