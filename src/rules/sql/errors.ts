import { ThingsteadError } from '../../errors/index.js';

/**
 * A rule SQL statement that does not parse or uses a feature its SQL version lacks. Surfaces on the API as
 * AWS's `SqlParseException` (400). `position` is the 0-based offset into the statement.
 */
export class SqlParseError extends ThingsteadError {
  constructor(
    /** The message without the position. */
    readonly detail: string,
    readonly position: number,
  ) {
    super('SqlParse', `${detail} at position ${position}`);
  }
}
