/**
 * The cluster bus on core NATS (see mqtt/bus.ts for the seam). A message published on this node is
 * delivered to local subscribers at once (synchronously, as on one node) and published once to the NATS
 * subject of its topic; NATS carries it to exactly the nodes that subscribed a matching subject. A node
 * subscribes once per distinct filter of its sessions (interest), and shares each share group with the
 * other nodes' members of it through a NATS queue group, so one member in the cluster gets each message.
 *
 * Two connections: `routes` (no echo: a node never gets its own messages back) carries publishes, plain
 * subscriptions and control; `groups` carries queue subscriptions, which must see this node's own
 * publishes too (a queue group chooses among every node's members, this one's included).
 *
 * Delivery guarantees: at most once between nodes (core NATS). A QoS 1/2 PUBLISH is acknowledged once NATS
 * has it (`afterSent`: a flush round trip, batched per event-loop turn) - the subscribing node may still
 * be lost before it queues or delivers it. While NATS is unreachable, messages for other nodes are
 * counted (`thingstead_cluster_unrouted_total`) and QoS 1/2 publishers get no PUBACK success (they resend).
 */
import { createHash } from 'node:crypto';
import type { NatsConnection, Subscription } from 'nats';
import {
  decodeProperties,
  encodeProperties,
  type Bus,
  type Core,
  type Routed,
  type StoreOp,
  type StoredRetained,
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
}

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
  };
  /** Whether `routes` is connected (set from its status events). */
  connected = true;
  private seq = 0;
  private readonly subs = new Map<string, Subscription[]>();
  /** Highest seq delivered per publishing node: a message matching several subscriptions arrives once each. */
  private readonly lastSeq = new Map<string, number>();
  private waiters: Array<(failure: string | null) => void> = [];
  private flushing = false;
  private readonly messages: string;
  private readonly retainedSubject: string;
  private retainedSub: Subscription | null = null;

  constructor(
    private readonly core: Core,
    private readonly routes: NatsConnection,
    private readonly groups: NatsConnection,
    private readonly prefix: string,
    readonly nodeId: string,
    private readonly ackTimeoutMs: number,
    private readonly onError: (err: unknown, what: string) => void,
  ) {
    this.messages = `${prefix}.m`;
    this.retainedSubject = `${prefix}.retained`;
  }

  /** Subscribe what the core already has (sessions restored before the bus) and the retained mirror. */
  start(): void {
    this.retainedSub = this.routes.subscribe(this.retainedSubject, {
      callback: (err, msg) => (err ? this.onError(err, 'retained subscription') : this.onRetained(msg.data)),
    });
    for (const { filter, group } of this.core.interests()) this.interest(filter, true, group);
  }

  publish(message: Routed): void {
    this.core.deliverLocal(message);
    if (!this.connected) this.counts.unrouted++;
    try {
      this.routes.publish(
        topicSubject(this.messages, message.topic),
        encodeFrame(this.nodeId, ++this.seq, message),
      );
      this.sent++;
      this.counts.sent++;
    } catch (err) {
      this.counts.unrouted++;
      this.onError(err, 'publish');
    }
  }

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

  interest(filter: string, present: boolean, group?: string): void {
    const key = group === undefined ? filter : `${group}\u0000${filter}`;
    if (!present) {
      for (const sub of this.subs.get(key) ?? []) sub.unsubscribe();
      this.subs.delete(key);
      return;
    }
    if (this.subs.has(key)) return;
    const subjects = filterSubjects(this.messages, filter);
    const subs =
      group === undefined
        ? subjects.map((subject) =>
            this.routes.subscribe(subject, {
              callback: (err, msg) => (err ? this.onError(err, 'subscription') : this.onMessage(msg.data)),
            }),
          )
        : subjects.map((subject) =>
            this.groups.subscribe(subject, {
              queue: queueName(group, filter),
              callback: (err, msg) =>
                err ? this.onError(err, 'group subscription') : this.onGroupMessage(group, filter, msg.data),
            }),
          );
    this.subs.set(key, subs);
  }

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
    this.counts.received++;
    try {
      this.core.deliverToGroup(group, filter, wire.message);
    } catch (err) {
      this.onError(err, 'group delivery');
    }
  }

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
      const settle = (failure: string | null) => {
        clearTimeout(timer);
        for (const d of batch) d(failure);
        this.flushing = false;
        if (this.waiters.length) this.flushSoon();
      };
    });
  }

  /** Subscriptions held on NATS (plain and queue), for the cluster view. */
  get routeCount(): number {
    let n = 0;
    for (const subs of this.subs.values()) n += subs.length;
    return n;
  }

  async close(): Promise<void> {
    for (const subs of this.subs.values()) for (const s of subs) s.unsubscribe();
    this.subs.clear();
    this.retainedSub?.unsubscribe();
    const waiting = this.waiters;
    this.waiters = [];
    for (const d of waiting) d('cluster_closing');
  }
}

/** NATS queue group of one MQTT share group on one filter (`$share/g/a/+` and `$share/g/a/#` differ). */
function queueName(group: string, filter: string): string {
  return `q${createHash('sha1').update(`${group}\u0000${filter}`).digest('hex').slice(0, 20)}`;
}
