/**
 * Retained-message replay after a SUBACK [MQTT-3.3.1-9..11], spread over event-loop turns so that a wide
 * subscription (`#` over a million retained topics) never blocks other clients.
 *
 * Contract:
 * - Ordering: the caller queues the SUBACK first; the first chunk is delivered in the same turn, right
 *   behind it, and later chunks on later turns, so every retained message follows the SUBACK. The filters of
 *   one session replay one after the other, in SUBSCRIBE order.
 * - Each turn delivers at most CHUNK_ENTRIES messages (visiting at most CHUNK_STEPS trie nodes and about
 *   CHUNK_BYTES bytes); the next chunk runs on a later turn (setImmediate).
 * - Backpressure instead of drops: QoS 0 deliveries go to the socket, so the replay waits while the socket
 *   holds more than half of limits.maxOutboundBytes; QoS 1/2 go through the session queue, so it waits while
 *   the queue holds half of limits.maxQueuedPerSession (the other half stays for live traffic). Live
 *   messages can still overflow either bound: that is the slow consumer / queue_full path, counted there.
 * - A replay stops as soon as the connection closes, the session is taken over, or the subscription is
 *   removed or replaced (UNSUBSCRIBE, or a new SUBSCRIBE of the same filter, which starts its own replay).
 * - Every delivery goes through `deliver()` (delivery.ts), which checks iot:Receive and expiry per message.
 */
import type { Connection } from './connection.js';
import type { RetainedCursor, RetainedEntry } from './retained.js';
import type { SubEntry } from './router.js';
import type { Session } from './session.js';
import { deliver } from './delivery.js';

/** Messages per turn: ~1-3 ms of encoding on the 2-core reference machine. */
export const CHUNK_ENTRIES = 512;
/** Trie nodes visited per turn (bounds a sparse match that visits many nodes for few entries). */
export const CHUNK_STEPS = 4096;
/** Poll interval while waiting for the socket or the queue to drain. */
const BACKOFF_MS = 5;

interface Job {
  readonly conn: Connection;
  readonly session: Session;
  /** Subscriptions still to replay, in order. */
  readonly todo: SubEntry<Session>[];
  current: { entry: SubEntry<Session>; cursor: RetainedCursor; done: boolean } | null;
  /** Entries taken from the cursor but not delivered yet (the chunk paused for backpressure). */
  pending: RetainedEntry[];
  scheduled: boolean;
}

/** One replay job per session at a time: later SUBSCRIBEs append to it (keeps SUBSCRIBE order). */
const jobs = new WeakMap<Session, Job>();

/**
 * Replay the retained messages matching `entries` (subscriptions just added to `conn`'s session, already
 * filtered by Retain Handling) to the session. Call after queuing the SUBACK.
 */
export function replayRetained(conn: Connection, entries: SubEntry<Session>[]): void {
  if (entries.length === 0) return;
  const s = conn.session!;
  const running = jobs.get(s);
  if (running && running.conn === conn) {
    running.todo.push(...entries);
    return;
  }
  const job: Job = { conn, session: s, todo: [...entries], current: null, pending: [], scheduled: false };
  jobs.set(s, job);
  step(job);
}

/** Live: the job may go on delivering. */
function live(job: Job): boolean {
  const { conn, session } = job;
  return conn.state === 'connected' && session.conn === conn && !conn.core.closing;
}

function step(job: Job): void {
  job.scheduled = false;
  const { conn, session } = job;
  const core = conn.core;
  if (!live(job)) return finish(job);
  const limits = core.config.limits;
  const socketBound = limits.maxOutboundBytes >> 1;
  const queueBound = Math.max(1, limits.maxQueuedPerSession >> 1);
  const byteBudget = limits.maxOutboundBytes >> 2;
  let delivered = 0;
  let bytes = 0;
  const now = Date.now();
  for (;;) {
    let cur = job.current;
    if (cur === null || (cur.done && job.pending.length === 0)) {
      const next = job.todo.shift();
      if (next === undefined) return finish(job);
      cur = job.current = { entry: next, cursor: core.retained.cursor(next.filter), done: false };
      job.pending = [];
    }
    const entry = cur.entry;
    if (session.subs.get(entry.filter) !== entry) {
      // Unsubscribed or replaced since: stop this filter's replay.
      cur.done = true;
      job.pending = [];
      continue;
    }
    if (conn.stream.writableLength > socketBound || (entry.qos > 0 && session.queue.length >= queueBound))
      return later(job, BACKOFF_MS);
    if (delivered >= CHUNK_ENTRIES || bytes >= byteBudget) return later(job, 0);
    if (job.pending.length === 0) {
      if (cur.done) continue;
      cur.done = cur.cursor.take(job.pending, CHUNK_ENTRIES - delivered, CHUNK_STEPS, now);
      if (job.pending.length === 0) {
        if (!cur.done) return later(job, 0); // visited CHUNK_STEPS nodes without a match: yield
        continue;
      }
      job.pending.reverse(); // deliver from the end (pop) in cursor order
    }
    const r = job.pending.pop()!;
    deliver(
      core,
      session,
      {
        topic: r.topic,
        payload: r.payload,
        qos: r.qos,
        retain: true,
        properties: r.properties,
        expiresAt: r.expiresAt,
        origin: null,
        publisher: null,
        ingress: 0,
      },
      r.qos < entry.qos ? r.qos : entry.qos,
      true, // [MQTT-3.3.1-8] retained replay carries RETAIN=1
      entry.subId !== undefined ? [entry.subId] : null,
    );
    delivered++;
    bytes += r.bytes;
    if (!live(job)) return finish(job);
  }
}

function later(job: Job, ms: number): void {
  if (job.scheduled) return;
  job.scheduled = true;
  if (ms === 0) setImmediate(step, job);
  else setTimeout(step, ms, job);
}

function finish(job: Job): void {
  job.todo.length = 0;
  job.pending = [];
  job.current = null;
  if (jobs.get(job.session) === job) jobs.delete(job.session);
}
