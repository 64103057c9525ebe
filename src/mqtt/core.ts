/**
 * The broker core shared by every connection: sessions (load, offline hand-over, expiry, end), routing
 * (the topic trie, overlapping and shared subscriptions, internal subscribers, the bus), subscriptions and
 * bus interest, the write batching of connections, and the broker's error paths. Delivery to one session
 * with QoS windows and queues is delivery.ts; the batched store writes are durability.ts; wills will.ts.
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
import type { AuthHooks, UsageMeter } from './hooks.js';
import type { InternalHandler } from './types.js';
import { TopicRouter, type SharedGroup, type SubEntry, type SubOwner } from './router.js';
import { Session, type Queued, type Routed } from './session.js';
import { publishWill, restoreWill, scheduleWill, storedWill } from './will.js';
import type { Connection } from './connection.js';
import type { BrokerMetrics } from './metrics.js';
import type { MqttStore, StoreOp, StoredQueued, StoredRetained, StoredSession } from './store.js';
import { RetainedStore } from './retained.js';
import { Lifecycle } from './lifecycle.js';
import { ConnectLimiter } from './connect-limiter.js';
import { StoreBatcher, type StoreFailure } from './durability.js';
import { RC } from './reason-codes.js';
import { ConnectionLog } from './connection-log.js';
import { createLocalBus, type Bus, type ClusterPort } from './bus.js';
import { splitShared, type TopicLimits } from './topics.js';
import { checkPublishProperties } from './codec.js';
import { deliver, keep, persistUndelivered } from './delivery.js';
import { ServiceTable } from './services.js';

function hasOnlineMember(g: SharedGroup<Owner>): boolean {
  for (const e of g.members) if (e.owner.kind === 'internal' || e.owner.conn !== null) return true;
  return false;
}

/** `$aws/rules/{rule}/...` (Basic Ingest). Hot path: one char test for every other topic. */
export function isBasicIngest(topic: string): boolean {
  return topic.charCodeAt(0) === 36 && topic.startsWith('$aws/rules/');
}

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
  /**
   * Cluster mode (src/cluster): session ownership across nodes. Null on a single node. When set, shared
   * subscriptions are balanced by the bus (`deliverToGroup`), not in `deliverLocal`.
   */
  cluster: ClusterPort | null = null;
  /** Cluster: serve a share group here when one of its members is online here (else any node's member). */
  sharedLocalFirst = true;
  /** Cluster: told of every retained set/clear made on this node, so other nodes' copies follow. */
  retainedChanged: ((op: StoreOp) => void) | null = null;
  /** Usage metering and quotas (src/metering), set by createBroker; null when metering is off. */
  meter: UsageMeter | null = null;
  closing = false;
  private dirty: Connection[] = [];
  private flushScheduled = false;
  /** Batched store writes (durability.ts). */
  private readonly durable: StoreBatcher;
  private stamp = 0;
  /** Session subscriptions per routed filter (and share group), so the bus hears only 0 <-> 1 transitions. */
  private readonly interest = new Map<string, number>();
  private readonly warn: (obj: object, msg: string) => void;
  private readonly flushAll = () => this.flushDirty();
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
    this.durable = new StoreBatcher(store, metrics, log, (task, err) => this.onBackgroundError(task, err));
    this.retained = new RetainedStore(
      (op) => {
        this.persist(op);
        if (this.retainedChanged !== null) this.retainedChanged(op);
      },
      {
        limits: config.limits,
        onRefused: () => metrics.dropped.retained_quota.inc(),
      },
    );
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

  /**
   * Read the store at start: retained messages, and (unless `sessions` is false: in a cluster, sessions
   * are owned per node and adopted through src/cluster) every persistent session.
   */
  async load(options: { sessions?: boolean } = {}): Promise<void> {
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
    if (options.sessions === false) return;
    /** Wills of sessions that expired while the server was down: published once every session is back. */
    const overdue: Array<ReturnType<typeof storedWill>> = [];
    for (const stored of await this.store.loadSessions()) this.restoreSession(stored, overdue);
    for (const will of overdue) publishWill(this, will);
  }

  /**
   * Bring one stored session into memory, offline: its subscriptions route (and become bus interest), its
   * queue waits, its pending will and expiry timers run. One that expired meanwhile is deleted and its will
   * goes to `overdue` (published by the caller once every session is back). Returns the session, or null.
   */
  restoreSession(stored: StoredSession, overdue: Array<ReturnType<typeof storedWill>>): Session | null {
    const now = Date.now();
    const disconnectedAt = stored.disconnectedAt ?? now;
    const remaining = disconnectedAt + stored.expiryInterval * 1000 - now;
    if (remaining <= 0 || stored.expiryInterval <= 0) {
      // [MQTT-3.1.2-8] the session ended, so its pending will is published.
      if (stored.will) overdue.push(storedWill(stored.clientId, stored.will));
      this.persist({ op: 'deleteSession', clientId: stored.clientId });
      return null;
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
    return s;
  }

  /**
   * Cluster hand-over: forget an offline session without touching the store (its state is written; the
   * node taking it over reads it from there). Its subscriptions stop routing here.
   */
  evictSession(s: Session): void {
    s.clearTimers();
    s.pendingWill = null;
    this.dropFromMemory(s);
  }

  /** A session leaves this node's memory: its subscriptions stop routing, its queue and in-flight go. */
  private dropFromMemory(s: Session): void {
    if (this.sessions.get(s.clientId) === s) this.sessions.delete(s.clientId);
    if (s.subCount) {
      for (const filter of [...s.subs.keys()]) {
        const { group, filter: f } = splitShared(filter);
        if (this.router.remove(f, s, group)) this.dropInterest(f, group);
      }
      s.subs.clear();
    }
    s.queue = [];
    if (s.inflightCount) s.inflight.clear();
  }

  /** Cluster: a retained message set or cleared on another node (already stored there), for this cache. */
  mirrorRetained(entry: StoredRetained): void {
    this.retained.mirror(entry);
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

  /**
   * The first step of a shutdown (also taken early by Broker.stopClients): refuse new connections and close
   * every client connection (v5 0x8B Server shutting down); wills stay pending, expiry timers do not start.
   */
  closeClients(): void {
    this.closing = true;
    for (const conn of [...this.connections])
      conn.close('server_shutdown', RC.SERVER_SHUTTING_DOWN, 'server shutting down');
  }

  /** Disconnect everyone (v5 0x8B Server shutting down), write what persistent sessions hold, flush. */
  async close(): Promise<void> {
    this.closeClients();
    this.durable.closing = true;
    clearInterval(this.sweeper);
    for (const s of this.sessions.values()) {
      s.clearTimers();
      if (s.persistent) persistUndelivered(this, s);
    }
    this.flushDirty();
    await this.durable.close();
    await this.bus.close();
  }

  // ---- store writes (durability.ts) -----------------------------------------------------------------

  persist(op: StoreOp): void {
    this.durable.persist(op);
  }

  /** See StoreBatcher.afterDurable: `done` runs once what was persisted so far is written, or failed. */
  afterDurable(done: (failure: StoreFailure | null) => void): void {
    this.durable.afterDurable(done);
  }

  /** Operations ever persisted (compare before and after `route()` to learn whether it wrote). */
  get opsCount(): number {
    return this.durable.opsCount;
  }

  /** True when the store is failing and its backlog is at its bound: refuse what would add to it. */
  storeBacklogFull(): boolean {
    return this.durable.backlogFull();
  }

  /** Problems for /healthz: empty while the store writes. */
  health(): string[] {
    return this.durable.health();
  }

  /** Store operations not yet written (for the gauge). */
  get storePending(): number {
    return this.durable.pending;
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
    // Basic Ingest is never retained: nobody but the rules engine may ever receive it (deliverLocal).
    if (msg.retain && !isBasicIngest(msg.topic)) {
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

  /**
   * Deliver to this node's subscribers. Overlapping subscriptions of one session deliver once. `remote`: a
   * message another node published (its internal subscribers, such as rules, ran there). In a cluster, share
   * groups are the bus's to place (one member in the cluster gets each message): with `sharedLocalFirst`
   * a group with a member online here is served here, and the groups not served are returned for the bus
   * (to hand to another node's members, or back here with `deliverToGroup`). Null: nothing left to place.
   */
  deliverLocal(msg: Routed, remote = false): readonly SharedGroup<Owner>[] | null {
    const match = this.router.match(msg.topic);
    if (match.entries.length === 0 && match.groups.length === 0) return null;
    if (remote) {
      if (isBasicIngest(msg.topic)) return null;
    } else if (isBasicIngest(msg.topic)) {
      // AWS Basic Ingest: `$aws/rules/{rule}/...` goes to the rules engine only, never to subscribers
      // (AWS IoT Developer Guide, "Reducing messaging costs with Basic Ingest"); internal subscribers only.
      for (const e of match.entries) if (e.owner.kind === 'internal') this.callInternal(e.owner, msg);
      return null;
    }
    const stamp = ++this.stamp;
    let targets: Session[] | null = null;
    let single: Session | null = null;
    for (const e of match.entries) {
      const owner = e.owner;
      if (owner.kind === 'internal') {
        if (!remote) this.callInternal(owner, msg);
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
    if (match.groups.length === 0) return null;
    if (this.cluster === null) {
      for (const g of match.groups) this.deliverShared(g.members, g, msg);
      return null;
    }
    if (remote) return null;
    if (!this.sharedLocalFirst) return match.groups;
    let rest: SharedGroup<Owner>[] | null = null;
    for (const g of match.groups) {
      if (hasOnlineMember(g)) this.deliverShared(g.members, g, msg);
      else (rest ??= []).push(g);
    }
    return rest;
  }

  /** Cluster: deliver to one of this node's members of `g` (a group the bus found no better place for). */
  deliverToLocalGroup(g: SharedGroup<Owner>, msg: Routed): void {
    this.deliverShared(g.members, g, msg);
  }

  /** Cluster: the bus chose this node's members of share group `group` on `filter` for this message. */
  deliverToGroup(group: string, filter: string, msg: Routed): void {
    for (const g of this.router.match(msg.topic).groups)
      if (g.group === group && g.filter === filter) return this.deliverShared(g.members, g, msg);
  }

  private deliverAgg(s: Session, msg: Routed): void {
    const qos = msg.qos < s.aggQos ? msg.qos : s.aggQos;
    // [MQTT-3.3.1-12] live deliveries carry RETAIN=0 unless Retain As Published.
    deliver(this, s, msg, qos, s.aggRap ? msg.retain : false, s.aggSubIds);
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
    deliver(
      this,
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

  // ---- subscriptions ---------------------------------------------------------------------------------

  /** Add or replace a session subscription. Returns true when it did not exist before. */
  addSubscription(s: Session, entry: SubEntry<Session>, persist = true): boolean {
    const existed = s.subs.has(entry.filter);
    s.subs.set(entry.filter, entry);
    const { group, filter } = splitShared(entry.filter);
    if (this.router.add(filter, entry, group)) this.addInterest(filter, group);
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
    if (this.router.remove(filter, s, group)) this.dropInterest(filter, group);
    if (s.stored) this.persist({ op: 'unsubscribe', clientId: s.clientId, filter: fullFilter });
    return true;
  }

  private addInterest(filter: string, group: string | undefined): void {
    const key = group === undefined ? filter : `${group}\u0000${filter}`;
    const n = this.interest.get(key) ?? 0;
    this.interest.set(key, n + 1);
    if (n === 0) this.bus.interest(filter, true, group);
  }

  private dropInterest(filter: string, group: string | undefined): void {
    const key = group === undefined ? filter : `${group}\u0000${filter}`;
    const n = this.interest.get(key) ?? 0;
    if (n <= 1) {
      this.interest.delete(key);
      if (n === 1) this.bus.interest(filter, false, group);
    } else this.interest.set(key, n - 1);
  }

  /** The filters (and share groups) this node's sessions subscribe to: what a new bus subscribes. */
  interests(): Array<{ filter: string; group: string | undefined }> {
    return [...this.interest.keys()].map((key) => {
      const cut = key.indexOf('\u0000');
      return cut < 0
        ? { filter: key, group: undefined }
        : { filter: key.slice(cut + 1), group: key.slice(0, cut) };
    });
  }

  /**
   * An internal subscriber (rules, services' event feeds) sees what is published on this node: in a cluster
   * every message is published on exactly one node, so internal subscribers run once per message. They are
   * not bus interest.
   */
  subscribeInternal(filter: string, handler: InternalHandler): () => void {
    const owner = new InternalSub(handler);
    const entry: SubEntry<Owner> = { owner, filter, qos: 0, nl: false, rap: true, rh: 0, subId: undefined };
    this.router.add(filter, entry);
    return () => {
      this.router.remove(filter, owner);
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
    this.cluster?.offline(s.clientId);
    s.stored = true;
    this.persist({
      op: 'session',
      clientId: s.clientId,
      protocolVersion: s.protocolVersion,
      expiryInterval: s.expiryInterval,
      disconnectedAt: s.disconnectedAt,
    });
    this.metrics.sessionsPersisted.inc();
    persistUndelivered(this, s);
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
    const undelivered = s.queue.length + s.inflightCount;
    if (undelivered) this.metrics.dropped.session_ended.inc(undelivered);
    this.dropFromMemory(s);
    if (s.stored) this.persist({ op: 'deleteSession', clientId: s.clientId });
    s.stored = false;
    this.cluster?.ended(s.clientId);
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
