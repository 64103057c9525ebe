import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { PostgresDatabase } from '../store/index.js';
import { encodeEvent, Subscribers } from './local.js';
import type { ChangeChannel, ChangeEvent, PublishedEvent } from './types.js';

/** What goes over NOTIFY: the publishing process (to drop our own echo) and the event. */
interface Envelope {
  readonly o: string;
  readonly e: ChangeEvent;
}

/** The NOTIFY channel of a schema (identifiers are limited to 63 bytes, schema names are not safe as-is). */
export const channelName = (schema: string) =>
  `thingstead_changes_${createHash('sha1').update(schema).digest('hex').slice(0, 16)}`;

/**
 * The cross-process channel on PostgreSQL LISTEN/NOTIFY. Every process sharing the database (and schema)
 * listens on one channel; `publish` delivers to this process's subscribers directly and NOTIFYs the others.
 * The channel name is derived from the current schema, because NOTIFY is database-wide and tests (or
 * tenants) may share one database with a schema each.
 *
 * The listener holds one dedicated connection. When it drops, the channel reconnects with backoff (a timer
 * runs only while disconnected) and then delivers `resync`, since events sent meanwhile are lost.
 *
 * @example const events = await createPostgresChannel({ db }); // db: the platform's PostgreSQL handle
 */
export async function createPostgresChannel(options: {
  db: PostgresDatabase;
  onError?: (err: unknown, event?: ChangeEvent) => void;
  /** First reconnect delay; doubles up to 5 s. */
  reconnectMs?: number;
}): Promise<ChangeChannel> {
  const { db } = options;
  const onError = options.onError ?? (() => undefined);
  const self = randomUUID();
  const subscribers = new Subscribers((err, event) => onError(err, event));
  const [row] = await db.query<{ schema: string }>('SELECT current_schema() AS schema');
  const channel = channelName(row?.schema ?? 'public');

  let client: pg.Client | null = null;
  let closed = false;
  let retryTimer: NodeJS.Timeout | null = null;
  let backoff = options.reconnectMs ?? 100;
  /** NOTIFYs go out one after another so other processes see this one's events in publish order. */
  let sending: Promise<void> = Promise.resolve();

  const onNotification = (msg: pg.Notification) => {
    if (msg.channel !== channel || !msg.payload) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(msg.payload) as Envelope;
    } catch (err) {
      onError(err);
      return;
    }
    if (envelope.o === self || typeof envelope.e?.kind !== 'string') return;
    void subscribers.deliver(envelope.e, 'remote');
  };

  async function listen(): Promise<void> {
    const c = new pg.Client(db.raw.options);
    c.on('notification', onNotification);
    c.on('error', (err) => {
      onError(err);
      lost(c);
    });
    c.on('end', () => lost(c));
    await c.connect();
    await c.query(`LISTEN ${channel}`);
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
  }

  function lost(c: pg.Client) {
    if (client !== c || closed) return;
    client = null;
    c.removeAllListeners('notification');
    c.end().catch(() => undefined);
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      listen().then(
        () => {
          backoff = options.reconnectMs ?? 100;
          // Whatever was published while we were not listening is lost: everyone re-reads.
          void subscribers.deliver({ kind: 'resync' }, 'remote');
        },
        (err: unknown) => {
          onError(err);
          backoff = Math.min(backoff * 2, 5000);
          scheduleReconnect();
        },
      );
    }, backoff);
    retryTimer.unref();
  }

  await listen();

  return {
    kind: 'postgres',
    async publish(event: PublishedEvent) {
      const payload = encodeEvent(event);
      if (closed) return;
      const envelope = JSON.stringify({ o: self, e: JSON.parse(payload) as ChangeEvent });
      // Right after the commit, on the pool (not the listener connection). A crash between the commit and
      // this NOTIFY loses the event for processes already running (they re-read everything on restart).
      const sent = sending.then(() =>
        db.query('SELECT pg_notify($1, $2)', [channel, envelope]).then(
          () => undefined,
          (err: unknown) => onError(err, event),
        ),
      );
      sending = sent;
      await Promise.all([sent, subscribers.deliver(event, 'local')]);
    },
    subscribe: (kinds, listener) => subscribers.add(kinds, listener),
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      await sending;
      const c = client;
      client = null;
      if (c) {
        c.removeAllListeners('notification');
        await c.end().catch(() => undefined);
      }
      await subscribers.idle();
    },
  };
}
