import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { PostgresDatabase } from '../store/index.js';
import { encodeEvent, Subscribers } from './local.js';
import type { ChangeChannel, ChangeEvent, PublishedEvent } from './types.js';

/**
 * What goes over NOTIFY: the publishing process (to drop our own echo) and the event (`e`), or several
 * events in publish order (`b`) when they were waiting for the same round trip.
 */
interface Envelope {
  readonly o: string;
  readonly e?: ChangeEvent;
  readonly b?: readonly ChangeEvent[];
}

/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_NOTIFY_BYTES = 7900;

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
  /**
   * NOTIFYs go out one after another so other processes see this one's events in publish order. Events
   * published while a NOTIFY is on its way wait in `pending` and leave together in the next one (as many as
   * fit in a payload): one round trip per batch, not per event, so a busy writer (shadow updates) does not
   * queue NOTIFYs without end.
   */
  const pending: Array<{ json: string; bytes: number; event: PublishedEvent; done: () => void }> = [];
  let sending: Promise<void> | null = null;
  const selfJson = JSON.stringify(self);

  async function drain(): Promise<void> {
    while (pending.length) {
      let size = selfJson.length + 16;
      let n = 0;
      while (n < pending.length && (n === 0 || size + pending[n]!.bytes + 1 <= MAX_NOTIFY_BYTES))
        size += pending[n++]!.bytes + 1;
      const batch = pending.splice(0, n);
      const envelope =
        batch.length === 1
          ? `{"o":${selfJson},"e":${batch[0]!.json}}`
          : `{"o":${selfJson},"b":[${batch.map((b) => b.json).join(',')}]}`;
      // Right after the commit, on the pool (not the listener connection). A crash between the commit and
      // this NOTIFY loses the event for processes already running (they re-read everything on restart).
      await db.query('SELECT pg_notify($1, $2)', [channel, envelope]).then(
        () => undefined,
        (err: unknown) => {
          for (const b of batch) onError(err, b.event);
        },
      );
      for (const b of batch) b.done();
    }
    sending = null;
  }

  const onNotification = (msg: pg.Notification) => {
    if (msg.channel !== channel || !msg.payload) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(msg.payload) as Envelope;
    } catch (err) {
      onError(err);
      return;
    }
    if (envelope.o === self) return;
    for (const event of envelope.b ?? (envelope.e ? [envelope.e] : []))
      if (typeof event?.kind === 'string') void subscribers.deliver(event, 'remote');
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
      const json = encodeEvent(event);
      if (closed) return;
      const sent = new Promise<void>((done) =>
        pending.push({ json, bytes: Buffer.byteLength(json), event, done }),
      );
      sending ??= drain();
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
