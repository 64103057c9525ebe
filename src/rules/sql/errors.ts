import { ThingsteadError, type Described } from '../../errors/index.js';

/**
 * A rule SQL statement that does not parse or uses a feature its SQL version lacks. Surfaces on the API as
 * AWS's `SqlParseException` (400). `position` is the 0-based offset into the statement.
 */
export class SqlParseError extends ThingsteadError {
  constructor(
    problem: Described<'SqlParse'>,
    readonly position: number,
  ) {
    super('SqlParse', `${problem.message} at position ${position}`, {}, problem.kind);
    this.detail = problem.message;
  }
  /** The message without the position. */
  readonly detail: string;
}
