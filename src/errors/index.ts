/**
 * The one error catalog. Each error has a stable code, an HTTP status, the AWS exception name where the
 * API is AWS-compatible, and the MQTT 5 reason code where one applies (codes.ts); each message kind names
 * its code and carries its text as a template with typed placeholders (kinds.ts), so throw sites pass
 * values, not prose. Every code and kind is listed in docs/errors.md. Nothing crosses a context boundary
 * as a bare Error; the MQTT hot path returns reason codes instead of throwing.
 * Imports: no other context (a leaf).
 * @example throw E.RuleNotFound({ ruleName }); // ResourceNotFoundException: Rule r1 does not exist
 */
export { ERRORS, type ErrorCode, type ErrorSpec } from './codes.js';
export { ThingsteadError, isThingsteadError } from './error.js';
export { E, type ErrorKindName } from './kinds.js';
export type { Described, ErrorKind, Extra, TemplateArgs } from './template.js';
