/**
 * The cluster bus on core NATS (see mqtt/bus.ts for the seam).
 *
 * Interest: each node tells the others which filters its sessions subscribe to (`{prefix}.interest`:
 * hello, full snapshots, then adds and removes), so every node holds a table of the other nodes' filters
 * (a topic trie, matched per message with the same cache as local routing). A message is published to NATS
 * only when another node has a matching filter: traffic that stays on one node (devices publishing to rules
 * or to local subscribers) costs nothing extra in a cluster.
 *
 * Routing: a message published here is delivered to local subscribers at once (synchronously, as on one
 * node), then published once to the subject of its topic (`{prefix}.m.{levels}`); NATS carries it to the
 * nodes whose subscriptions match (a node subscribes once per distinct filter; see subjects.ts). Share
 * groups: with local-first placement (the default) a group with a member online here is served here;
 * groups served nowhere yet go to `{prefix}.g.{levels}`, where each node's members of a group hold one NATS
 * queue subscription, so NATS picks one node per group; the frame lists the groups already served here, so
 * a node picked for one of those drops its copy. With balanced placement every group goes through NATS.
 *
 * Two connections: `routes` (no echo: a node never gets its own messages back) carries publishes, plain
 * subscriptions, gossip and control; `groups` carries queue subscriptions, which must see this node's own
 * publishes too (a queue group chooses among every node's members, this one's included).
 *
 * Delivery guarantees: at most once between nodes (core NATS). A QoS 1/2 PUBLISH that crossed to NATS is
 * acknowledged once NATS has it (`afterSent`: a flush round trip, batched per event-loop turn); the
 * subscribing node may still be lost before it queues or delivers it. While NATS is unreachable, messages
 * for other nodes are counted (`thingstead_cluster_unrouted_total`) and QoS 1/2 publishers get no success.
 */
import { createHash } from 'node:crypto';
import type { NatsConnection, Subscription } from 'nats';
import {
  TopicRouter,
  decodeProperties,
  encodeProperties,
  type Bus,
  type Core,
  type Routed,
  type StoreOp,
  type StoredRetained,
  type SubEntry,
  type SubOwner,
} from '../mqtt/index.js';
import { decodeFrame, encodeFrame } from './frame.js';
import { filterSubjects, topicSubject } from './subjects.js';

/** Counts the bus keeps in plain numbers (read by the metrics at scrape time and by the cluster view). */
export interface BusCounts {
  sent: number;
  received: number;
  duplicates: number;
  undecodable: number;
  unrouted: number;
  ackFailures: number;
  retainedMirrored: number;
  /** Messages that had no interest on any other node (not published to NATS). */
  stayedLocal: number;
}

/** Another node, as an owner of entries in the remote-interest trie. */
class RemoteNode implements SubOwner {
  readonly kind = 'internal' as const;
  readonly keys = new Map<string, { filter: string; group: string | undefined }>();
  constructor(readonly id: string) {}
}

type Gossip =
  | { n: string; op: 'hello' }
  | { n: string; op: 'snap'; all: Array<[string, string | null]> }
  | { n: string; op: 'add' | 'del'; f: string; g: string | null }
  | { n: string; op: 'gone' };

const groupKey = (group: string, filter: string) => `${group}\u0000${filter}`;
/** Slice length for counting what may have been in flight when NATS went away. */
const RECENT_MS = 100;
/** Longest a node waits, after a reconnect, for the others to re-announce their interest. */
const RECOVERY_MS = 3000;

export class NatsBus implements Bus {
  sent = 0;
  readonly counts: BusCounts = {
    sent: 0,
    received: 0,
    duplicates: 0,
    undecodable: 0,
    unrouted: 0,
    ackFailures: 0,
    retainedMirrored: 0,
    stayedLocal: 0,
  };
  /** Whether `routes` is connected (see `disconnected` / `reconnected`). */
  connected = true;
  /**
   * After a reconnect, until every node known before has re-announced its interest (so its subscriptions
   * are back on NATS) or RECOVERY_MS passed: what is published meanwhile may not arrive, and is counted.
   */
  private recoveringUntil = 0;
  private awaitingPeers = new Set<string>();
  /** Cross-node publishes in the previous and the current RECENT_MS slice (see `disconnected`). */
  private recent = [0, 0];
  private recentSlice = 0;
  private seq = 0;
  private readonly subs = new Map<string, Subscription[]>();
  /** The other nodes' filters. */
  private readonly remote = new TopicRouter<RemoteNode>();
  private readonly nodes = new Map<string, RemoteNode>();
  /** Highest seq delivered per publishing node: a message matching several subscriptions arrives once each. */
  private readonly lastSeq = new Map<string, number>();
  private waiters: Array<(failure: string | null) => void> = [];
  private flushing = false;
  private readonly messages: string;
  private readonly groupMessages: string;
  private readonly retainedSubject: string;
  private readonly gossipSubject: string;
  private readonly own: Subscription[] = [];

  constructor(
    private readonly core: Core,
    private readonly routes: NatsConnection,
    private readonly groups: NatsConnection,
    prefix: string,
    readonly nodeId: string,
    private readonly ackTimeoutMs: number,
    private readonly onError: (err: unknown, what: string) => void,
  ) {
    this.messages = `${prefix}.m`;
    this.groupMessages = `${prefix}.g`;
    this.retainedSubject = `${prefix}.retained`;
    this.gossipSubject = `${prefix}.interest`;
  }

  /** Subscribe what the core already has (sessions restored before the bus), the mirror and the gossip. */
  start(): void {
    this.own.push(
      this.routes.subscribe(this.retainedSubject, {
        callback: (err, msg) =>
          err ? this.onError(err, 'retained subscription') : this.onRetained(msg.data),
      }),
      this.routes.subscribe(this.gossipSubject, {
        callback: (err, msg) => (err ? this.onError(err, 'interest subscription') : this.onGossip(msg.data)),
      }),
    );
    for (const { filter, group } of this.core.interests()) this.interest(filter, true, group);
    this.announce();
  }

  /** (Re)introduce this node: ask for everyone's interest and send ours (at start and after a reconnect). */
  announce(): void {
    this.gossip({ n: this.nodeId, op: 'hello' });
    this.sendSnapshot();
  }

  // ---- publishing ------------------------------------------------------------------------------------

  publish(message: Routed): void {
    const unplaced = this.core.deliverLocal(message);
    const remote = this.nodes.size === 0 ? null : this.remote.match(message.topic);
    const plain = remote !== null && remote.entries.length > 0;
    let viaGroups = false;
    let served: string[] | null = null;
    if (unplaced !== null || (remote !== null && remote.groups.length > 0)) {
      const remoteKeys = new Set(remote?.groups.map((g) => groupKey(g.group, g.filter)) ?? []);
      const unplacedKeys = new Set<string>();
      // Groups this node could not (or, balanced, would not) serve: through NATS when another node has
      // the group too, else here (only offline members here: they queue).
      for (const g of unplaced ?? []) {
        const key = groupKey(g.group, g.filter);
        unplacedKeys.add(key);
        if (remoteKeys.has(key)) viaGroups = true;
        else this.core.deliverToLocalGroup(g, message);
      }
      if (remoteKeys.size > 0) {
        // Groups served here are listed in the frame, so the node NATS picks for them drops its copy.
        for (const g of this.core.router.match(message.topic).groups) {
          const key = groupKey(g.group, g.filter);
          if (!unplacedKeys.has(key) && remoteKeys.has(key)) (served ??= []).push(key);
        }
        for (const key of remoteKeys) if (!unplacedKeys.has(key) && !served?.includes(key)) viaGroups = true;
      }
    }
    if (!plain && !viaGroups) {
      this.counts.stayedLocal++;
      return;
    }
    if (!this.connected || (this.recoveringUntil !== 0 && this.stillRecovering())) this.counts.unrouted++;
    else this.countRecent();
    try {
      const frame = encodeFrame(this.nodeId, ++this.seq, message, served);
      if (plain) this.routes.publish(topicSubject(this.messages, message.topic), frame);
      if (viaGroups) this.routes.publish(topicSubject(this.groupMessages, message.topic), frame);
      this.sent++;
      this.counts.sent++;
    } catch (err) {
      this.counts.unrouted++;
      this.onError(err, 'publish');
    }
  }

  private countRecent(): void {
    const slice = Math.floor(performance.now() / RECENT_MS);
    if (slice !== this.recentSlice) {
      this.recent = slice === this.recentSlice + 1 ? [this.recent[1]!, 0] : [0, 0];
      this.recentSlice = slice;
    }
    this.recent[1]!++;
  }

  /**
   * NATS went away. What was published in the moments before that was noticed may have been in the socket
   * buffer: it is counted as unrouted too (up to two RECENT_MS slices), so the count bounds the loss.
   */
  disconnected(): void {
    if (!this.connected) return;
    this.connected = false;
    this.counts.unrouted += this.recent[0]! + this.recent[1]!;
    this.recent = [0, 0];
  }

  /** NATS is back: re-announce, and count what is published until the other nodes are subscribed again. */
  reconnected(): void {
    this.connected = true;
    this.awaitingPeers = new Set(this.nodes.keys());
    this.recoveringUntil = performance.now() + RECOVERY_MS;
    this.announce();
  }

  private stillRecovering(): boolean {
    if (this.awaitingPeers.size > 0 && performance.now() < this.recoveringUntil) return true;
    this.recoveringUntil = 0;
    return false;
  }

  // ---- interest ----------------------------------------------------------------------------------------

  interest(filter: string, present: boolean, group?: string): void {
    const key = group === undefined ? filter : groupKey(group, filter);
    if (!present) {
      for (const sub of this.subs.get(key) ?? []) sub.unsubscribe();
      if (this.subs.delete(key)) this.gossip({ n: this.nodeId, op: 'del', f: filter, g: group ?? null });
      return;
    }
    if (this.subs.has(key)) return;
    const subs =
      group === undefined
        ? filterSubjects(this.messages, filter).map((subject) =>
            this.routes.subscribe(subject, {
              callback: (err, msg) => (err ? this.onError(err, 'subscription') : this.onMessage(msg.data)),
            }),
          )
        : filterSubjects(this.groupMessages, filter).map((subject) =>
            this.groups.subscribe(subject, {
              queue: queueName(group, filter),
              callback: (err, msg) =>
                err ? this.onError(err, 'group subscription') : this.onGroupMessage(group, filter, msg.data),
            }),
          );
    this.subs.set(key, subs);
    this.gossip({ n: this.nodeId, op: 'add', f: filter, g: group ?? null });
  }

  private sendSnapshot(): void {
    const all: Array<[string, string | null]> = this.core.interests().map((i) => [i.filter, i.group ?? null]);
    this.gossip({ n: this.nodeId, op: 'snap', all });
  }

  private gossip(g: Gossip): void {
    try {
      this.routes.publish(this.gossipSubject, Buffer.from(JSON.stringify(g)));
    } catch (err) {
      this.onError(err, 'interest gossip');
    }
  }

  private onGossip(data: Uint8Array): void {
    let g: Gossip;
    try {
      g = JSON.parse(Buffer.from(data).toString('utf8')) as Gossip;
    } catch {
      this.counts.undecodable++;
      return;
    }
    if (g.n === this.nodeId) return;
    // A node heard from after a reconnect has its subscriptions back (they precede its publishes).
    this.awaitingPeers.delete(g.n);
    switch (g.op) {
      case 'hello':
        return this.sendSnapshot();
      case 'gone':
        return this.forgetNode(g.n);
      case 'snap': {
        this.forgetNode(g.n);
        for (const [f, grp] of g.all) this.addRemote(g.n, f, grp ?? undefined);
        return;
      }
      case 'add':
        return this.addRemote(g.n, g.f, g.g ?? undefined);
      case 'del': {
        const node = this.nodes.get(g.n);
        const key = g.g === null ? g.f : groupKey(g.g, g.f);
        if (node?.keys.delete(key)) this.remote.remove(g.f, node, g.g ?? undefined);
        return;
      }
    }
  }

  private addRemote(nodeId: string, filter: string, group: string | undefined): void {
    let node = this.nodes.get(nodeId);
    if (!node) this.nodes.set(nodeId, (node = new RemoteNode(nodeId)));
    const key = group === undefined ? filter : groupKey(group, filter);
    if (node.keys.has(key)) return;
    node.keys.set(key, { filter, group });
    const entry: SubEntry<RemoteNode> = {
      owner: node,
      filter,
      qos: 0,
      nl: false,
      rap: false,
      rh: 0,
      subId: undefined,
    };
    this.remote.add(filter, entry, group);
  }

  /** A node left or died: its filters no longer draw messages to NATS. */
  forgetNode(nodeId: string): void {
    const node = this.nodes.get(nodeId);
    if (!node) return;
    for (const { filter, group } of node.keys.values()) this.remote.remove(filter, node, group);
    this.nodes.delete(nodeId);
    this.lastSeq.delete(nodeId);
  }

  /** Say this node is leaving (its filters stop drawing messages at once). */
  sayGone(): void {
    this.gossip({ n: this.nodeId, op: 'gone' });
  }

  // ---- receiving ---------------------------------------------------------------------------------------

  private onMessage(data: Uint8Array): void {
    const wire = decodeFrame(data);
    if (wire === null) {
      this.counts.undecodable++;
      return;
    }
    const last = this.lastSeq.get(wire.node) ?? 0;
    if (wire.seq <= last) {
      this.counts.duplicates++;
      return;
    }
    this.lastSeq.set(wire.node, wire.seq);
    this.counts.received++;
    try {
      this.core.deliverLocal(wire.message, true);
    } catch (err) {
      this.onError(err, 'delivery');
    }
  }

  private onGroupMessage(group: string, filter: string, data: Uint8Array): void {
    const wire = decodeFrame(data);
    if (wire === null) {
      this.counts.undecodable++;
      return;
    }
    // The publishing node served this group itself.
    if (wire.served?.includes(groupKey(group, filter))) return;
    this.counts.received++;
    try {
      this.core.deliverToGroup(group, filter, wire.message);
    } catch (err) {
      this.onError(err, 'group delivery');
    }
  }

  // ---- retained mirror -------------------------------------------------------------------------------

  /** A retained message set or cleared here (and being stored): the other nodes keep their copies current. */
  retainedChanged(op: StoreOp): void {
    const row: StoredRetained | null =
      op.op === 'retain'
        ? op.message
        : op.op === 'unretain'
          ? {
              topic: op.topic,
              payload: Buffer.alloc(0),
              qos: 0,
              retain: true,
              expiresAt: null,
              modifiedAt: Date.now(),
            }
          : null;
    if (row === null) return;
    const header = Buffer.from(
      JSON.stringify({
        t: row.topic,
        q: row.qos,
        p: encodeProperties(row.properties),
        e: row.expiresAt,
        m: row.modifiedAt,
        o: row.owner ?? null,
      }),
    );
    const frame = Buffer.allocUnsafe(4 + header.length + row.payload.length);
    frame.writeUInt32BE(header.length, 0);
    header.copy(frame, 4);
    row.payload.copy(frame, 4 + header.length);
    try {
      this.routes.publish(this.retainedSubject, frame);
    } catch (err) {
      this.counts.unrouted++;
      this.onError(err, 'retained publish');
    }
  }

  private onRetained(data: Uint8Array): void {
    try {
      const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
      const hlen = buf.readUInt32BE(0);
      const h = JSON.parse(buf.toString('utf8', 4, 4 + hlen)) as {
        t: string;
        q: 0 | 1 | 2;
        p: string | null;
        e: number | null;
        m: number;
        o: string | null;
      };
      this.core.mirrorRetained({
        topic: h.t,
        payload: Buffer.from(buf.subarray(4 + hlen)),
        qos: h.q,
        retain: true,
        properties: decodeProperties(h.p),
        expiresAt: h.e,
        modifiedAt: h.m,
        owner: h.o,
      });
      this.counts.retainedMirrored++;
    } catch {
      this.counts.undecodable++;
    }
  }

  // ---- acknowledgements --------------------------------------------------------------------------------

  afterSent(done: (failure: string | null) => void): void {
    this.waiters.push(done);
    if (!this.flushing) this.flushSoon();
  }

  private flushSoon(): void {
    this.flushing = true;
    setImmediate(() => {
      const batch = this.waiters;
      this.waiters = [];
      let timer: NodeJS.Timeout | undefined;
      const settle = (failure: string | null) => {
        clearTimeout(timer);
        for (const d of batch) d(failure);
        this.flushing = false;
        if (this.waiters.length) this.flushSoon();
      };
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), this.ackTimeoutMs);
      });
      Promise.race([this.routes.flush(), timeout]).then(
        () => settle(null),
        () => {
          this.counts.ackFailures += batch.length;
          settle('cluster_routing_unavailable');
        },
      );
    });
  }

  /** Subscriptions held on NATS for sessions (plain and queue), for the cluster view. */
  get routeCount(): number {
    let n = 0;
    for (const subs of this.subs.values()) n += subs.length;
    return n;
  }

  /** Other nodes this node knows the interest of. */
  get knownNodes(): number {
    return this.nodes.size;
  }

  async close(): Promise<void> {
    this.sayGone();
    for (const subs of this.subs.values()) for (const s of subs) s.unsubscribe();
    this.subs.clear();
    for (const s of this.own) s.unsubscribe();
    const waiting = this.waiters;
    this.waiters = [];
    for (const d of waiting) d('cluster_closing');
  }
}

/** NATS queue group of one MQTT share group on one filter (`$share/g/a/+` and `$share/g/a/#` differ). */
function queueName(group: string, filter: string): string {
  return `q${createHash('sha1').update(groupKey(group, filter)).digest('hex').slice(0, 20)}`;
}
