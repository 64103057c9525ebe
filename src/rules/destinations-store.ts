import { migrate, type Database, type Migration } from '../store/index.js';

/**
 * Topic rule destinations on the platform database (SQLite or PostgreSQL, portable SQL). One row per
 * destination; the confirmation URL is unique (a second destination for the same URL is refused) and so is
 * the pending confirmation token.
 */

/** reference §3.10-style enum of the model (TopicRuleDestinationStatus). */
export type DestinationStatus = 'ENABLED' | 'IN_PROGRESS' | 'DISABLED' | 'ERROR' | 'DELETING';

export interface DestinationRecord {
  readonly arn: string;
  readonly confirmationUrl: string;
  readonly status: DestinationStatus;
  readonly statusReason: string | null;
  /** The token the last confirmation message carried; null once none is pending. */
  readonly token: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

const DDL = (bigint: string, text: string) => `
CREATE TABLE rule_destinations (arn ${text} PRIMARY KEY, confirmation_url TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL, status_reason TEXT, token TEXT UNIQUE, created_at ${bigint} NOT NULL,
  updated_at ${bigint} NOT NULL);`;

export const DESTINATION_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'topic rule destinations',
    sqlite: DDL('INTEGER', 'TEXT'),
    postgres: DDL('BIGINT', 'TEXT COLLATE "C"'),
  },
];

const toRecord = (r: Record<string, unknown>): DestinationRecord => ({
  arn: String(r.arn),
  confirmationUrl: String(r.confirmation_url),
  status: String(r.status) as DestinationStatus,
  statusReason: (r.status_reason as string | null) ?? null,
  token: (r.token as string | null) ?? null,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export class DestinationStore {
  private constructor(private readonly db: Database) {}

  static async open(db: Database): Promise<DestinationStore> {
    await migrate(db, 'rule-destinations', DESTINATION_MIGRATIONS);
    return new DestinationStore(db);
  }

  /** False when a destination for the same confirmation URL exists. */
  async insert(d: DestinationRecord): Promise<boolean> {
    const n = await this.db.run(
      'INSERT INTO rule_destinations (arn, confirmation_url, status, status_reason, token, created_at, updated_at) ' +
        'VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING',
      [d.arn, d.confirmationUrl, d.status, d.statusReason, d.token, d.createdAt, d.updatedAt],
    );
    return n > 0;
  }

  /** Write status, reason and token when the row is still as `expected` left it (false otherwise). */
  async update(d: DestinationRecord, expected: DestinationRecord): Promise<boolean> {
    const n = await this.db.run(
      'UPDATE rule_destinations SET status = $2, status_reason = $3, token = $4, updated_at = $5 ' +
        'WHERE arn = $1 AND status = $6 AND updated_at = $7',
      [d.arn, d.status, d.statusReason, d.token, d.updatedAt, expected.status, expected.updatedAt],
    );
    return n > 0;
  }

  async delete(arn: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM rule_destinations WHERE arn = $1', [arn])) > 0;
  }

  async get(arn: string): Promise<DestinationRecord | undefined> {
    const rows = await this.db.query<Record<string, unknown>>(
      'SELECT * FROM rule_destinations WHERE arn = $1',
      [arn],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async byToken(token: string): Promise<DestinationRecord | undefined> {
    const rows = await this.db.query<Record<string, unknown>>(
      'SELECT * FROM rule_destinations WHERE token = $1',
      [token],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(): Promise<DestinationRecord[]> {
    const rows = await this.db.query<Record<string, unknown>>('SELECT * FROM rule_destinations ORDER BY arn');
    return rows.map(toRecord);
  }
}
