import { ERRORS, type ErrorCode, type ErrorSpec } from './codes.js';

/**
 * The error every context throws on the control plane. Raise it through a message kind (`E.PolicyNotFound(...)`,
 * see kinds.ts) so the text comes from the catalog; the bare constructor is for the kinds themselves and for
 * code not yet moved onto them.
 * @example throw E.RuleNotFound({ ruleName: name });
 */
export class ThingsteadError extends Error {
  readonly spec: ErrorSpec;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra modeled members copied into the response body (e.g. resourceId, resourceArn). */
    readonly extra: Record<string, unknown> = {},
    /** The message kind that produced the text (docs/errors.md); the code itself for a bare construction. */
    readonly kind: string = code,
  ) {
    super(message);
    this.name = ERRORS[code].awsName;
    this.spec = ERRORS[code];
  }
}

export function isThingsteadError(err: unknown): err is ThingsteadError {
  return err instanceof ThingsteadError;
}
