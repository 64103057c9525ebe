/**
 * Change events: how contexts learn of each other's committed writes (DESIGN.md "One process, bounded
 * contexts"). A context publishes one small typed event after each committed store write (a thing, type,
 * group, membership, principal attachment, policy version or attachment, certificate or CA status, rule,
 * access key; shadows and jobs add theirs to `ChangeEventMap`); subscribers re-read what they cache.
 *
 * Two implementations behind one contract (`events.test.ts` runs the same suite on both):
 * - in-process (`createLocalChannel`): the embedded SQLite mode, which is one process. A second process
 *   on the same SQLite file (a second `thingstead up`) is not supported: it would not see the first one's
 *   changes. The CLI's one direct path (`thingstead keys`) is covered by the access-key cache expiry
 *   (credentials.ts), see src/cli/keys.ts.
 * - PostgreSQL LISTEN/NOTIFY (`createPostgresChannel`), for processes sharing one database. Chosen over
 *   a broker (NATS) or a polled table because the PostgreSQL mode already has the database: no extra
 *   service to run, delivery in milliseconds without polling, and NOTIFY is issued right after the
 *   commit of the write it announces (inside the same transaction would also work: NOTIFY is delivered
 *   on commit). Payloads are limited to 8000 bytes, so events carry ids only and receivers re-read;
 *   `publish` refuses a bigger one on both channels.
 *
 * Imports: types only from store (the PostgreSQL channel listens on the platform's database).
 */
export type {
  ChangeChannel,
  ChangeEvent,
  ChangeEventMap,
  ChangeKind,
  ChangeListener,
  ChangeOf,
  ChangeOrigin,
  PublishedEvent,
} from './types.js';
export { MAX_EVENT_BYTES } from './types.js';
export { createLocalChannel } from './local.js';
export { createPostgresChannel } from './postgres.js';

import type { Database } from '../store/index.js';
import { createLocalChannel } from './local.js';
import { createPostgresChannel } from './postgres.js';
import type { ChangeChannel, ChangeEvent } from './types.js';

/**
 * The channel for a platform database: LISTEN/NOTIFY on PostgreSQL, in-process on SQLite.
 * @example const events = await openChangeChannel(db, { onError: (err) => log.warn({ err }, 'change event') });
 */
export async function openChangeChannel(
  db: Database,
  options: { onError?: (err: unknown, event?: ChangeEvent) => void } = {},
): Promise<ChangeChannel> {
  return db.kind === 'postgres'
    ? createPostgresChannel({ db, onError: options.onError })
    : createLocalChannel({ onError: options.onError });
}
