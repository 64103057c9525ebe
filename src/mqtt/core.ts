/**
 * The broker core shared by every connection: sessions, the topic router, retained messages, delivery
 * with QoS windows and queues, wills, session expiry, lifecycle events and the batched store writes.
 *
 * Hot-path contract: `route()` and everything it calls is synchronous; nothing on the QoS 0 path awaits.
 *
 * Durability contract (decided here, documented for operators):
 * - A QoS 1/2 PUBLISH whose routing wrote to the store (it was retained, or queued for an OFFLINE persistent
 *   session) is acknowledged only after the batch holding that write committed; if the write fails the
 *   PUBACK/PUBREC carries 0x97 Quota exceeded (disk full) or 0x80 Unspecified error and a 3.1.1 client is
 *   disconnected without an acknowledgement. Acknowledgements keep PUBLISH order [MQTT-4.6.0-2]. A PUBLISH
 *   that wrote nothing (online subscribers only) is acknowledged once routed in memory.
 * - Store writes are collected and applied in one transaction per event-loop turn (setImmediate batching),
 *   in order. A failed batch is kept, ahead of anything newer, and retried with backoff (100 ms to 5 s);
 *   while it fails the store is degraded: /healthz says so, a gauge and a counter by error code say so, and
 *   one log line per failure streak (rate-limited). When the backlog passes STORE_BACKLOG_OPS operations or
 *   STORE_BACKLOG_BYTES, QoS 1/2 and retained PUBLISHes are refused before routing (0x97), so memory stays
 *   bounded and nothing is acknowledged that is not written.
 * - When a persistent session goes offline, its unacknowledged in-flight and queued messages are written in
 *   the same way. So a crash loses at most the last un-flushed batch of messages that were never
 *   acknowledged to their publisher, plus the in-flight messages of sessions that were online at the time;
 *   a graceful close() loses nothing it could write.
 * - Inbound QoS 2 packet ids awaiting PUBREL [MQTT-4.3.3-9] are written when a persistent session goes
 *   offline (and the stored copy cleared when it resumes), so a resent PUBLISH is not routed twice after a
 *   restart; a crash loses those of sessions online at the time (the client's resend is then routed again).
 * - A pending delayed will [MQTT-3.1.3-9] is written when its connection ends and deleted when it fires or is
 *   cancelled; a graceful close() keeps it (not published), and after a restart it fires at its time, at once
 *   if its session expired meanwhile, unless the client resumes the session first (see will.ts).
 */
import { rateLimitedLog, type Logger } from '../observability/index.js';
import type { Config } from '../config/index.js';
import type { AuthHooks, AuthzSubject } from './hooks.js';
import type { InternalHandler, Message } from './types.js';
import { TopicRouter, type SubEntry, type SubOwner } from './router.js';
import { Session, type Queued, type Routed } from './session.js';
import { publishWill, restoreWill, scheduleWill, storedWill } from './will.js';
import type { Connection } from './connection.js';
import type { BrokerMetrics } from './metrics.js';
import type { MqttStore, StoreOp, StoredQueued } from './store.js';
import { RetainedStore } from './retained.js';
import { Lifecycle } from './lifecycle.js';
import { ConnectLimiter } from './connect-limiter.js';
import { RC } from './reason-codes.js';
import { ConnectionLog } from './connection-log.js';
import { createLocalBus, type Bus } from './bus.js';
import type { TopicLimits } from './topics.js';
import { checkPublishProperties, encodePublishFast, ownPayload } from './codec.js';
import { authorizeReceive, authorizeSubscribe } from './authorize.js';
import { ServiceTable } from './services.js';

export class InternalSub implements SubOwner {
  readonly kind = 'internal' as const;
  constructor(readonly handler: InternalHandler) {}
}

export type Owner = Session | InternalSub;

export class Core {
  readonly router = new TopicRouter<Owner>();
  readonly sessions = new Map<string, Session>();
  readonly connections = new Set<Connection>();
  readonly retained: RetainedStore;
  readonly lifecycle: Lifecycle;
  readonly topicLimits: TopicLimits;
  /** CONNECTs per client id (limits.connectsPerClientIdPerSecond); swept by `sweep`. */
  readonly connectLimiter: ConnectLimiter;
  /** Info lines per connect / disconnect / refusal, budgeted per second (connection-log.ts). */
  readonly connLog: ConnectionLog;
  bus: Bus;
  closing = false;
  private dirty: Connection[] = [];
  private flushScheduled = false;
  /** Store operations not yet written, in order (a failed batch is put back at the front). */
  private ops: StoreOp[] = [];
  /** Callbacks waiting for every op now in `ops` to be written (or to fail). */
  private durableWaiters: Array<(failure: StoreFailure | null) => void> = [];
  private opsScheduled = false;
  private storeChain: Promise<void> = Promise.resolve();
  /** Approximate bytes held by `ops` (payloads and topics), for the backlog bound. */
  private opsBytes = 0;
  /**
   * Operations ever persisted: a caller compares it before and after `route()` to learn whether routing
   * wrote to the store (and so whether an acknowledgement must wait for `afterDurable`).
   */
  opsCount = 0;
  /** Set while store writes fail (the first failure of the streak); cleared by the next successful batch. */
  storeFailure: StoreFailure | null = null;
  private retryDelay = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private stamp = 0;
  /** Subscriptions per routed filter, so the bus hears only 0 <-> 1 transitions. */
  private readonly interest = new Map<string, number>();
  private readonly warn: (obj: object, msg: string) => void;
  private readonly flushAll = () => this.flushDirty();
  private readonly flushOps = () => this.flushStore();
  /** One timer for every connection's connect timeout and keep-alive (no timer per connection). */
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly config: Config,
    readonly hooks: AuthHooks,
    readonly metrics: BrokerMetrics,
    readonly log: Logger,
    private readonly store: MqttStore,
    /** Reserved-topic services (see services.ts): requests are handed to them from `route`. */
    readonly services: ServiceTable = new ServiceTable({ logger: log }),
  ) {
    this.retained = new RetainedStore((op) => this.persist(op), {
      limits: config.limits,
      onRefused: () => metrics.dropped.retained_quota.inc(),
    });
    this.lifecycle = new Lifecycle((topic, payload) =>
      this.route({
        topic,
        payload,
        qos: 0,
        retain: false,
        properties: undefined,
        expiresAt: null,
        origin: null,
        publisher: null,
        ingress: performance.now(),
      }),
    );
    this.topicLimits = config.limits;
    this.connLog = new ConnectionLog(log);
    this.connectLimiter = new ConnectLimiter(
      config.limits.connectsPerClientIdPerSecond,
      config.limits.connectBurstPerClientId,
    );
    this.bus = createLocalBus((m) => this.deliverLocal(m));
    this.warn = rateLimitedLog(log);
    const every = Math.max(50, Math.min(500, Math.floor(config.limits.connectTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.sweep(), every).unref();
  }

  private sweep(): void {
    const now = Date.now();
    this.connectLimiter.sweep(now);
    this.connLog.roll(now);
    for (const c of this.connections) {
      try {
        c.checkDeadlines(now);
      } catch (err) {
        this.onBackgroundError('sweep', err);
      }
    }
  }

  // ---- start / stop ----------------------------------------------------------------------------------

  async load(): Promise<void> {
    await this.store.init();
    // Stored messages that no longer decode (damaged, or written by an older version) are dropped, counted
    // and deleted, never fatal: encoding them for a subscriber would fail on every delivery.
    const retained = (await this.store.loadRetained()).filter((r) => {
      const why = checkPublishProperties(r.properties);
      if (why === null) return true;
      this.dropUndecodable('retained', why, r.topic);
      this.persist({ op: 'unretain', topic: r.topic });
      return false;
    });
    this.retained.load(retained);
    const now = Date.now();
    /** Wills of sessions that expired while the server was down: published once every session is back. */
    const overdue: Array<ReturnType<typeof storedWill>> = [];
    for (const stored of await this.store.loadSessions()) {
      const disconnectedAt = stored.disconnectedAt ?? now;
      const remaining = disconnectedAt + stored.expiryInterval * 1000 - now;
      if (remaining <= 0 || stored.expiryInterval <= 0) {
        // [MQTT-3.1.2-8] the session ended, so its pending will is published.
        if (stored.will) overdue.push(storedWill(stored.clientId, stored.will));
        this.persist({ op: 'deleteSession', clientId: stored.clientId });
        continue;
      }
      const s = new Session(stored.clientId, stored.protocolVersion, stored.expiryInterval);
      s.stored = true;
      s.disconnectedAt = disconnectedAt;
      this.sessions.set(s.clientId, s);
      for (const sub of stored.subscriptions) this.addSubscription(s, { owner: s, ...sub }, false);
      for (const q of stored.queue) {
        const why = checkPublishProperties(q.message.properties);
        if (why === null) this.restoreQueued(s, q);
        else {
          this.dropUndecodable('queued', why, q.message.topic);
          this.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
        }
      }
      if (stored.incomingQos2?.length) {
        s.incomingQos2 = new Set(stored.incomingQos2);
        s.qos2Stored = true;
      }
      if (stored.will) restoreWill(this, s, stored.will);
      s.expiryTimer = setTimeout(this.expireLater, remaining, s).unref();
    }
    for (const will of overdue) publishWill(this, will);
  }

  private dropUndecodable(kind: 'retained' | 'queued', why: string, topic: string): void {
    this.metrics.storeUndecodable.inc({ kind });
    this.warn({ kind, topic, why }, 'stored message no longer decodes; dropped');
  }

  private restoreQueued(s: Session, q: StoredQueued): void {
    const m = q.message;
    const { subscriptionIdentifier, ...properties } = (m.properties ?? {}) as Record<string, unknown>;
    const subIds = Array.isArray(subscriptionIdentifier)
      ? (subscriptionIdentifier as number[])
      : typeof subscriptionIdentifier === 'number'
        ? [subscriptionIdentifier]
        : null;
    const queued: Queued = {
      seq: q.seq,
      msg: {
        topic: m.topic,
        payload: m.payload,
        qos: m.qos,
        retain: m.retain,
        properties: m.properties ? properties : undefined,
        expiresAt: m.expiresAt,
        origin: null,
        publisher: null,
        ingress: 0,
      },
      qos: m.qos === 2 ? 2 : 1,
      retain: m.retain,
      subIds,
      state: q.state,
      packetId: q.packetId ?? 0,
      persisted: true,
    };
    s.seq = Math.max(s.seq, q.seq);
    if (q.state > 0 && q.packetId) s.inflight.set(q.packetId, queued);
    else s.queue.push(queued);
  }

  /** Disconnect everyone (v5 0x8B Server shutting down), write what persistent sessions hold, flush. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const conn of [...this.connections])
      conn.close('server_shutdown', RC.SERVER_SHUTTING_DOWN, 'server shutting down');
    for (const s of this.sessions.values()) {
      s.clearTimers();
      if (s.persistent) this.persistUndelivered(s);
    }
    this.flushDirty();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.flushStore();
    await this.storeChain;
    if (this.ops.length)
      this.log.error(
        { ops: this.ops.length, code: this.storeFailure?.code },
        'mqtt store unavailable at shutdown: operations not written',
      );
    await this.bus.close();
  }

  // ---- store batching --------------------------------------------------------------------------------

  persist(op: StoreOp): void {
    this.ops.push(op);
    this.opsCount++;
    this.opsBytes += opBytes(op);
    this.scheduleStoreFlush();
  }

  /**
   * Call `done` once every operation persisted so far is written (null), or with the failure of the batch
   * that held them. Used by acknowledgements that promise durability. `done` runs on a later turn.
   */
  afterDurable(done: (failure: StoreFailure | null) => void): void {
    const failing = this.storeFailure;
    if (failing !== null) {
      // Writes are failing and wait for the next retry (up to 5 s away): say so now rather than hold the
      // client. The operations stay in the retried backlog, so they may still be written later.
      setImmediate(() => {
        try {
          done(failing);
        } catch (err) {
          this.onBackgroundError('durability_callback', err);
        }
      });
      return;
    }
    this.durableWaiters.push(done);
    this.scheduleStoreFlush();
  }

  /** True when the store is failing and its backlog is at its bound: refuse what would add to it. */
  storeBacklogFull(): boolean {
    return (
      this.storeFailure !== null &&
      (this.ops.length >= STORE_BACKLOG_OPS || this.opsBytes >= STORE_BACKLOG_BYTES)
    );
  }

  /** Problems for /healthz: empty while the store writes. */
  health(): string[] {
    const f = this.storeFailure;
    if (!f) return [];
    return [
      `mqtt store degraded since ${new Date(f.since).toISOString()}: ${f.code} (${f.message}); ` +
        `${this.ops.length} operations waiting, retrying every ${this.retryDelay} ms`,
    ];
  }

  /** Store operations not yet written (for the gauge). */
  get storePending(): number {
    return this.ops.length;
  }

  private scheduleStoreFlush(): void {
    // While a failed batch waits for its retry timer, new work joins it instead of hammering the store.
    if (this.opsScheduled || this.retryTimer !== null) return;
    this.opsScheduled = true;
    setImmediate(this.flushOps);
  }

  private flushStore(): void {
    this.opsScheduled = false;
    // The batch is taken when the chain reaches it, not now: a failed earlier batch is put back in front
    // of it first, so operations always reach the store in the order they were made.
    this.storeChain = this.storeChain
      .then(() => this.writeBatch())
      .catch((err: unknown) => this.onBackgroundError('store_batch', err));
  }

  private async writeBatch(): Promise<void> {
    const batch = this.ops;
    const waiters = this.durableWaiters;
    if (batch.length === 0 && waiters.length === 0) return;
    this.ops = [];
    this.durableWaiters = [];
    const bytes = this.opsBytes;
    this.opsBytes = 0;
    let failure: StoreFailure | null = null;
    try {
      if (batch.length) await this.store.apply(batch);
      this.metrics.storeBatches.inc();
    } catch (err) {
      failure = storeFailure(err, this.storeFailure?.since ?? Date.now());
    }
    if (failure === null) {
      if (this.storeFailure) {
        this.log.warn(
          { code: this.storeFailure.code, downMs: Date.now() - this.storeFailure.since, ops: batch.length },
          'mqtt store writes recovered; the retried batch is written',
        );
        this.storeFailure = null;
        this.retryDelay = 0;
        this.metrics.storeDegraded.set(0);
      }
    } else {
      this.metrics.storeFailures.inc({ code: failure.code });
      this.metrics.storeDegraded.set(1);
      if (!this.storeFailure)
        this.log.error(
          { code: failure.code, err: failure.message, ops: batch.length },
          'mqtt store write failed; keeping the batch and retrying (acknowledgements that need it are refused)',
        );
      this.storeFailure = failure;
      // Keep the batch, ahead of anything made since.
      this.ops = batch.length ? (this.ops.length ? batch.concat(this.ops) : batch) : this.ops;
      this.opsBytes += bytes;
      this.retryDelay = Math.min(Math.max(100, this.retryDelay * 2), 5000);
      if (this.retryTimer === null && !this.closing) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.flushStore();
        }, this.retryDelay).unref();
      }
    }
    for (const w of waiters) {
      try {
        w(failure);
      } catch (err) {
        this.onBackgroundError('durability_callback', err);
      }
    }
  }

  // ---- write batching --------------------------------------------------------------------------------

  markDirty(conn: Connection): void {
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushAll);
    }
  }

  private flushDirty(): void {
    this.flushScheduled = false;
    const list = this.dirty;
    this.dirty = [];
    for (const c of list) {
      try {
        c.flush();
      } catch (err) {
        this.onBackgroundError('flush', err);
        c.close('server_initiated');
      }
    }
  }

  // ---- routing ---------------------------------------------------------------------------------------

  /**
   * Route one message: retain it if flagged, hand a client's request on a reserved topic to its service's
   * queue (it is routed to subscribers as well), then hand it to the bus. Hot path: synchronous.
   */
  route(msg: Routed): void {
    if (msg.retain) {
      keep(msg);
      this.retained.set({
        topic: msg.topic,
        payload: msg.payload,
        qos: msg.qos,
        properties: msg.properties,
        expiresAt: msg.expiresAt,
        owner: msg.origin,
      });
    }
    const services = this.services.match(msg);
    if (services !== null) {
      keep(msg);
      this.services.dispatch(services, msg);
    }
    this.bus.publish(msg);
  }

  /** Deliver to this node's subscribers. Overlapping subscriptions of one session deliver once. */
  deliverLocal(msg: Routed): void {
    const match = this.router.match(msg.topic);
    if (match.entries.length === 0 && match.groups.length === 0) return;
    const stamp = ++this.stamp;
    let targets: Session[] | null = null;
    let single: Session | null = null;
    for (const e of match.entries) {
      const owner = e.owner;
      if (owner.kind === 'internal') {
        this.callInternal(owner, msg);
        continue;
      }
      // [MQTT-3.8.3-3] No Local: not to the connection that published it.
      if (e.nl && owner.clientId === msg.origin) continue;
      if (owner.stamp !== stamp) {
        owner.stamp = stamp;
        owner.aggQos = e.qos;
        owner.aggRap = e.rap;
        owner.aggSubIds = e.subId !== undefined ? [e.subId] : null;
        if (single === null && targets === null) single = owner;
        else {
          targets ??= [single!];
          targets.push(owner);
        }
      } else {
        if (e.qos > owner.aggQos) owner.aggQos = e.qos;
        if (e.rap) owner.aggRap = true;
        if (e.subId !== undefined) (owner.aggSubIds ??= []).push(e.subId);
      }
    }
    if (targets) {
      for (const s of targets) this.deliverAgg(s, msg);
    } else if (single) this.deliverAgg(single, msg);
    for (const g of match.groups) this.deliverShared(g.members, g, msg);
  }

  private deliverAgg(s: Session, msg: Routed): void {
    const qos = msg.qos < s.aggQos ? msg.qos : s.aggQos;
    // [MQTT-3.3.1-12] live deliveries carry RETAIN=0 unless Retain As Published.
    this.deliver(s, msg, qos, s.aggRap ? msg.retain : false, s.aggSubIds);
  }

  /** [MQTT-4.8.2-4] one member of a share group gets each message; round-robin, preferring online ones. */
  private deliverShared(members: SubEntry<Owner>[], g: { next: number }, msg: Routed): void {
    const n = members.length;
    if (n === 0) return;
    let chosen: SubEntry<Owner> | null = null;
    for (let k = 0; k < n; k++) {
      const e = members[(g.next + k) % n]!;
      const owner = e.owner;
      if (owner.kind === 'session' && owner.conn === null) continue;
      chosen = e;
      g.next = (g.next + k + 1) % n;
      break;
    }
    if (!chosen) {
      chosen = members[g.next % n]!;
      g.next = (g.next + 1) % n;
    }
    const owner = chosen.owner;
    if (owner.kind === 'internal') return this.callInternal(owner, msg);
    const qos = msg.qos < chosen.qos ? msg.qos : chosen.qos;
    this.deliver(
      owner,
      msg,
      qos,
      chosen.rap ? msg.retain : false,
      chosen.subId !== undefined ? [chosen.subId] : null,
    );
  }

  private callInternal(sub: InternalSub, msg: Routed): void {
    keep(msg);
    try {
      sub.handler(msg, msg.publisher);
    } catch (err) {
      this.warn({ err, topic: msg.topic }, 'internal subscriber threw');
    }
  }

  /** Deliver one message to one session with the granted QoS. Hot path. */
  deliver(s: Session, msg: Routed, qos: 0 | 1 | 2, retain: boolean, subIds: number[] | null): void {
    const conn = s.conn;
    const subject = conn ? conn.subject : s.subject;
    if (subject !== null && !this.authorizeReceive(subject, msg.topic)) {
      this.metrics.dropped.not_authorized_receive.inc();
      return;
    }
    if (msg.expiresAt !== null && msg.expiresAt <= Date.now()) {
      this.metrics.dropped.expired.inc();
      return;
    }
    if (qos === 0) {
      // QoS 0 is not queued for offline sessions.
      if (conn === null) return;
      // A delivery that is not sent (too large, or not encodable) was counted by the connection.
      if (
        !retain &&
        subIds === null &&
        msg.properties === undefined &&
        msg.expiresAt === null &&
        conn.aliasMaxOut === 0
      ) {
        // Shared bytes: encoded once per message and protocol family, reused by every such receiver.
        const buf =
          conn.version === 5
            ? (msg.enc5 ??= encodePublishFast(msg.topic, msg.payload, 0, false, false, 0, true))
            : (msg.enc4 ??= encodePublishFast(msg.topic, msg.payload, 0, false, false, 0, false));
        conn.sendEncodedPublish(buf, msg.ingress);
      } else conn.sendPublish(this.outbound(msg, 0, retain, subIds, 0, false), msg.ingress);
      return;
    }
    keep(msg);
    const q: Queued = { seq: ++s.seq, msg, qos, retain, subIds, state: 0, packetId: 0, persisted: false };
    if (conn !== null && s.queue.length === 0 && s.inflightCount < conn.sendWindow)
      this.sendQueued(s, conn, q, false);
    else this.enqueue(s, q);
  }

  private authorizeReceive(subject: AuthzSubject, topic: string): boolean {
    return authorizeReceive(this.hooks, subject, topic);
  }

  outbound(
    msg: Routed,
    qos: 0 | 1 | 2,
    retain: boolean,
    subIds: number[] | null,
    packetId: number,
    dup: boolean,
  ) {
    return {
      topic: msg.topic,
      payload: msg.payload,
      qos,
      retain,
      dup,
      packetId,
      properties: msg.properties,
      expiresAt: msg.expiresAt,
      subIds,
    };
  }

  /** Queue for later (offline, or the in-flight window is full). Bounded: the oldest is dropped, counted. */
  private enqueue(s: Session, q: Queued): void {
    if (s.queue.length >= this.config.limits.maxQueuedPerSession) {
      // Drop policy: the oldest QoS 1 message (QoS 0 is never queued); the oldest QoS 2 only if none.
      const first = s.queue[0]!;
      const i = first.qos === 1 ? 0 : s.queue.findIndex((x) => x.qos === 1);
      const old = i <= 0 ? s.queue.shift()! : s.queue.splice(i, 1)[0]!;
      this.metrics.dropped.queue_full.inc();
      if (old.persisted) this.persist({ op: 'dequeue', clientId: s.clientId, seq: old.seq });
    }
    s.queue.push(q);
    if (s.conn === null && s.persistent) this.persistQueued(s, q);
  }

  /** Write (or update the state of) one queued message of a persistent session. */
  persistQueued(s: Session, q: Queued): void {
    q.persisted = true;
    const m = q.msg;
    const properties = q.subIds
      ? ({ ...(m.properties ?? {}), subscriptionIdentifier: q.subIds } as Message['properties'])
      : m.properties;
    this.persist({
      op: 'enqueue',
      clientId: s.clientId,
      seq: q.seq,
      state: q.state,
      packetId: q.state > 0 ? q.packetId : null,
      message: {
        topic: m.topic,
        payload: m.payload,
        qos: q.qos,
        retain: q.retain,
        properties,
        expiresAt: m.expiresAt,
      },
    });
  }

  /** Write every not-yet-persisted in-flight or queued message of a persistent session. */
  private persistUndelivered(s: Session): void {
    if (s.inflightCount) for (const q of s.inflight.values()) if (!q.persisted) this.persistQueued(s, q);
    for (const q of s.queue) if (!q.persisted) this.persistQueued(s, q);
  }

  private sendQueued(s: Session, conn: Connection, q: Queued, dup: boolean): void {
    const id = s.allocatePacketId();
    q.packetId = id;
    q.state = 1;
    s.inflight.set(id, q);
    if (!conn.sendPublish(this.outbound(q.msg, q.qos, q.retain, q.subIds, id, dup), q.msg.ingress)) {
      // [MQTT-3.1.2-25] too large for the client (or not encodable): discard, behave as if delivered
      // (counted by the connection).
      this.completed(s, id);
    }
  }

  /** An outbound QoS 1/2 exchange finished (PUBACK / PUBCOMP): free the slot and send what waits. */
  completed(s: Session, packetId: number): boolean {
    const q = s.inflight.get(packetId);
    if (!q) return false;
    s.inflight.delete(packetId);
    if (q.persisted) this.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
    return true;
  }

  /** Fill the in-flight window from the queue [MQTT-5.0 §4.9] (flow control: the Receive Maximum). */
  pump(s: Session): void {
    const conn = s.conn;
    if (conn === null) return;
    const now = Date.now();
    while (s.queue.length && s.inflightCount < conn.sendWindow && conn.state === 'connected') {
      const q = s.queue.shift()!;
      if (q.msg.expiresAt !== null && q.msg.expiresAt <= now) {
        this.metrics.dropped.expired.inc();
        if (q.persisted) this.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
        continue;
      }
      // Stored messages are authorized again at delivery, for the connection receiving them now: the
      // permission may have been removed while they waited, or another principal took the session over.
      if (conn.subject !== null && !this.authorizeReceive(conn.subject, q.msg.topic)) {
        this.metrics.dropped.not_authorized_receive.inc();
        if (q.persisted) this.persist({ op: 'dequeue', clientId: s.clientId, seq: q.seq });
        continue;
      }
      if (q.persisted) {
        // Resending from the store: remember the packet id as in flight.
        this.sendQueued(s, conn, q, false);
        if (s.inflight.has(q.packetId)) this.persistQueued(s, q);
      } else this.sendQueued(s, conn, q, false);
    }
  }

  /** On session resumption: resend unacknowledged PUBLISH with DUP=1 and PUBREL [MQTT-4.4.0-1]. */
  resume(s: Session, conn: Connection): void {
    if (s.qos2Stored) {
      // The ids live in memory while the session is online; the stored copy would outlive their PUBREL.
      s.qos2Stored = false;
      this.persist({ op: 'qos2', clientId: s.clientId, packetIds: [] });
    }
    const subject = conn.subject;
    if (subject !== null && s.subCount) {
      // Stored subscriptions are authorized again for the subject resuming the session (iot:Subscribe).
      for (const filter of [...s.subs.keys()]) {
        if (!authorizeSubscribe(this.hooks, subject, filter)) {
          this.removeSubscription(s, filter);
          this.metrics.dropped.subscription_revoked.inc();
        }
      }
    }
    if (s.inflightCount)
      for (const [id, q] of [...s.inflight]) {
        // PUBREL only completes a message the client already received.
        if (q.state === 2) conn.sendPacket({ cmd: 'pubrel', messageId: id });
        else if (subject !== null && !this.authorizeReceive(subject, q.msg.topic)) {
          this.metrics.dropped.not_authorized_receive.inc();
          this.completed(s, id);
        } else if (!conn.sendPublish(this.outbound(q.msg, q.qos, q.retain, q.subIds, id, true), 0)) {
          this.completed(s, id);
        }
      }
    this.pump(s);
  }

  // ---- subscriptions ---------------------------------------------------------------------------------

  /** Add or replace a session subscription. Returns true when it did not exist before. */
  addSubscription(s: Session, entry: SubEntry<Session>, persist = true): boolean {
    const existed = s.subs.has(entry.filter);
    s.subs.set(entry.filter, entry);
    const { group, filter } = splitShared(entry.filter);
    if (this.router.add(filter, entry, group)) this.addInterest(filter);
    if (persist && s.persistent) {
      s.stored = true;
      this.persist({
        op: 'subscribe',
        clientId: s.clientId,
        sub: {
          filter: entry.filter,
          qos: entry.qos,
          nl: entry.nl,
          rap: entry.rap,
          rh: entry.rh,
          subId: entry.subId,
        },
      });
    }
    return !existed;
  }

  removeSubscription(s: Session, fullFilter: string): boolean {
    if (!s.subs.delete(fullFilter)) return false;
    const { group, filter } = splitShared(fullFilter);
    if (this.router.remove(filter, s, group)) this.dropInterest(filter);
    if (s.stored) this.persist({ op: 'unsubscribe', clientId: s.clientId, filter: fullFilter });
    return true;
  }

  private addInterest(filter: string): void {
    const n = this.interest.get(filter) ?? 0;
    this.interest.set(filter, n + 1);
    if (n === 0) this.bus.interest(filter, true);
  }

  private dropInterest(filter: string): void {
    const n = this.interest.get(filter) ?? 0;
    if (n <= 1) {
      this.interest.delete(filter);
      if (n === 1) this.bus.interest(filter, false);
    } else this.interest.set(filter, n - 1);
  }

  subscribeInternal(filter: string, handler: InternalHandler): () => void {
    const owner = new InternalSub(handler);
    const entry: SubEntry<Owner> = { owner, filter, qos: 0, nl: false, rap: true, rh: 0, subId: undefined };
    this.router.add(filter, entry);
    this.addInterest(filter);
    return () => {
      if (this.router.remove(filter, owner)) this.dropInterest(filter);
    };
  }

  // ---- session lifecycle -----------------------------------------------------------------------------

  /** Called once per connection close. Hands the session to offline state or ends it. */
  onClosed(conn: Connection, wasConnected: boolean): void {
    if (this.connections.delete(conn)) this.metrics.connections.dec();
    const reason = conn.closeReason ?? 'connection_lost';
    this.metrics.disconnects.inc({ reason });
    const s = conn.session;
    if (wasConnected) this.connLog.disconnected(conn);
    if (!wasConnected || s === null || s.conn !== conn) return;
    s.conn = null;
    s.disconnectedAt = Date.now();
    this.lifecycle.disconnected(
      {
        clientId: conn.clientId,
        sessionIdentifier: conn.sessionIdentifier,
        principalId: conn.principal?.id ?? '',
        ipAddress: conn.info.remoteAddress,
        thingName: conn.principal?.thingName,
      },
      reason,
    );
    // [MQTT-3.1.2-8] the will is published unless the client sent DISCONNECT 0x00 (handlers clear it).
    if (conn.will) scheduleWill(this, s, conn.will, conn);
    if (!s.persistent) {
      this.endSession(s);
      return;
    }
    s.stored = true;
    this.persist({
      op: 'session',
      clientId: s.clientId,
      protocolVersion: s.protocolVersion,
      expiryInterval: s.expiryInterval,
      disconnectedAt: s.disconnectedAt,
    });
    this.metrics.sessionsPersisted.inc();
    this.persistUndelivered(s);
    // Inbound QoS 2 ids awaiting PUBREL, so a resent PUBLISH is still not routed twice after a restart.
    const qos2 = s.incomingQos2;
    if (qos2?.size || s.qos2Stored) {
      s.qos2Stored = qos2 !== null && qos2.size > 0;
      this.persist({ op: 'qos2', clientId: s.clientId, packetIds: qos2 ? [...qos2] : [] });
    }
    if (!this.closing) s.expiryTimer = setTimeout(this.expireLater, s.expiryInterval * 1000, s).unref();
  }

  /** Timer callback for session expiry (one function for every session: no closure per timer). */
  private readonly expireLater = (s: Session) => {
    try {
      this.expireSession(s);
    } catch (err) {
      this.onBackgroundError('session_expiry', err);
    }
  };

  /** Session Expiry Interval elapsed while offline [MQTT-4.1.0-2]. */
  private expireSession(s: Session): void {
    s.expiryTimer = null;
    if (s.conn === null && this.sessions.get(s.clientId) === s) this.endSession(s);
  }

  /** Discard a session: its pending will fires now [MQTT-3.1.2-8], its state is deleted. */
  endSession(s: Session): void {
    const will = s.pendingWill;
    s.clearTimers();
    s.pendingWill = null;
    // The session's rows go with deleteSession (the will's and the QoS 2 ids' too).
    if (s.willStored && !s.stored) this.persist({ op: 'will', clientId: s.clientId, will: null });
    s.willStored = false;
    s.qos2Stored = false;
    if (this.sessions.get(s.clientId) === s) this.sessions.delete(s.clientId);
    if (s.subCount) {
      for (const filter of [...s.subs.keys()]) {
        const { group, filter: f } = splitShared(filter);
        if (this.router.remove(f, s, group)) this.dropInterest(f);
      }
      s.subs.clear();
    }
    const undelivered = s.queue.length + s.inflightCount;
    if (undelivered) this.metrics.dropped.session_ended.inc(undelivered);
    s.queue = [];
    if (s.inflightCount) s.inflight.clear();
    if (s.stored) this.persist({ op: 'deleteSession', clientId: s.clientId });
    s.stored = false;
    if (will) publishWill(this, will);
  }

  // ---- problems --------------------------------------------------------------------------------------

  onSlowConsumer(conn: Connection): void {
    this.metrics.dropped.slow_consumer.inc();
    this.warn(
      {
        clientId: conn.clientId,
        remote: conn.info.remoteAddress,
        limit: this.config.limits.maxOutboundBytes,
      },
      'slow consumer disconnected: outbound buffer over limits.maxOutboundBytes',
    );
    conn.close('slow_consumer');
  }

  onHandlerError(conn: Connection, err: unknown): void {
    this.log.error({ err, clientId: conn.clientId }, 'mqtt handler error; closing connection');
    conn.close('server_initiated', RC.IMPLEMENTATION_SPECIFIC_ERROR, 'implementation specific error');
  }

  /**
   * The last line of defence for the broker's own background work (will timers, session expiry, store
   * batches): a failure is logged and counted (`thingstead_mqtt_background_errors_total{task}`), and the
   * process goes on.
   */
  onBackgroundError(task: string, err: unknown): void {
    this.metrics.backgroundErrors.inc({ task });
    this.log.error({ err, task }, 'mqtt background task failed');
  }

  logProtocolError(conn: Connection, code: number, reason: string): void {
    this.warn(
      { clientId: conn.clientId, remote: conn.info.remoteAddress, code, reason },
      'mqtt protocol error',
    );
  }
}

/** Bounds on the store backlog while writes fail (then QoS 1/2 and retained PUBLISHes are refused). */
export const STORE_BACKLOG_OPS = 100_000;
export const STORE_BACKLOG_BYTES = 64 * 1024 * 1024;

/** Why store writes fail; `full` when the disk (or the database's quota) is full. */
export interface StoreFailure {
  readonly code: string;
  readonly message: string;
  readonly full: boolean;
  /** Epoch ms of the first failure of this streak. */
  readonly since: number;
}

function storeFailure(err: unknown, since: number): StoreFailure {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'UNKNOWN';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  // SQLite: SQLITE_FULL; the OS: ENOSPC / EDQUOT; PostgreSQL: 53100 disk_full, 53200 out_of_memory.
  const full = /^(SQLITE_FULL|ENOSPC|EDQUOT|53100)$/.test(code) || /disk (is )?full|no space/i.test(message);
  return { code, message, full, since };
}

/** Approximate memory an operation holds until written. */
function opBytes(op: StoreOp): number {
  if (op.op === 'enqueue' || op.op === 'retain')
    return 64 + op.message.payload.length + op.message.topic.length;
  return 64;
}

/** The message outlives this read turn: make sure its payload does not pin a large read chunk. */
function keep(msg: Routed): void {
  if (msg.owned !== true) {
    msg.payload = ownPayload(msg.payload);
    msg.owned = true;
  }
}

export function splitShared(full: string): { group: string | undefined; filter: string } {
  if (!full.startsWith('$share/')) return { group: undefined, filter: full };
  const slash = full.indexOf('/', 7);
  return { group: full.slice(7, slash), filter: full.slice(slash + 1) };
}

export function safe(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}
