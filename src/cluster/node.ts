/**
 * A cluster node: joins the cluster's NATS (routing, control) and PostgreSQL directory (nodes, client
 * ownership), and plugs into the broker core as its bus and its ClusterPort (see mqtt/bus.ts).
 *
 * Session ownership, end to end:
 * - CONNECT on node B for client X: B claims X in the directory (one transaction), learning the previous
 *   owner A. B asks A over NATS (`{prefix}.node.{A}.release`) to let go: A closes X's connection with v5
 *   DISCONNECT 0x8E, writes the session (subscriptions, queued and in-flight messages, QoS 2 ids, a delayed
 *   will), forgets it, and answers once that is committed. B then reads the session from PostgreSQL and
 *   accepts the CONNECT. No responder (A is gone): B reads what A last wrote, and publishes the will of
 *   A's connection unless the session resumes within the will's delay.
 * - Every `heartbeatMs` a node records that it is alive; a node not heard of for `deadAfterMs` is dead.
 *   Any node that notices removes it and adopts the client ids it owned (conditional updates: each goes to
 *   one node): persistent sessions are loaded (their subscriptions route again, messages queue for them),
 *   wills of the connections that were up are published (or held for their delay), and each connection
 *   that was up gets its disconnected lifecycle event.
 * - A node leaving gracefully disconnects its clients (0x8B), writes their sessions and removes its row,
 *   so the others adopt its offline sessions at their next sweep (it also tells them at once over NATS).
 *
 * What can be lost (documented in docs/cluster.md): messages in flight between nodes when one dies
 * (core NATS is at most once), messages routed to X's filters in the moments between A's release and B's
 * subscriptions reaching NATS, and what a node had not yet written when it was killed.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { connect, Events, type NatsConnection } from 'nats';
import type { Config } from '../config/index.js';
import type { PostgresDatabase } from '../store/index.js';
import type { Logger } from '../observability/index.js';
import { Counter, Gauge, Histogram, rateLimitedLog, type Registry } from '../observability/index.js';
import {
  publishWill,
  restoreWill,
  RC,
  type ClusterPort,
  type ConnectClaim,
  type Core,
  type MqttStore,
  type StoredWill,
  type PendingWill,
} from '../mqtt/index.js';
import { ClusterDirectory, type AdoptedClient, type ConnRecord, type NodeRow } from './directory.js';
import { NatsBus } from './nats-bus.js';
import { decodeClaimWill, encodeClaimWill } from './will-codec.js';

export interface ClusterOptions {
  readonly config: Config;
  readonly db: PostgresDatabase;
  readonly logger: Logger;
  readonly metrics: Registry;
}

/** What GET /cluster shows: every node the directory knows, and this node's own view. */
export interface ClusterView {
  readonly cluster: string;
  readonly node: { readonly id: string; readonly name: string };
  readonly nodes: Array<NodeRow & { readonly alive: boolean; readonly self: boolean }>;
}

export interface ClusterNode {
  readonly nodeId: string;
  readonly name: string;
  /** Plug into the broker core (called by the broker's start, after retained messages are loaded). */
  attach(core: Core, store: MqttStore): Promise<void>;
  view(): Promise<ClusterView>;
  /** Problems for /healthz (NATS unreachable). */
  health(): string[];
  /** Leave the cluster (after the broker closed: its sessions are written). */
  close(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<ClusterNode> {
  const { config, db } = options;
  const c = config.cluster;
  const log = options.logger;
  const warn = rateLimitedLog(log);
  const nodeId = randomBytes(6).toString('hex');
  const name = c.nodeName ?? `${hostname()}-${process.pid}`;
  const prefix = `ts.${c.name}`;
  const servers = c.natsUrl!.split(',').map((s) => s.trim());
  const natsOptions = {
    servers,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: false,
  } as const;
  let routes: NatsConnection;
  let groups: NatsConnection;
  try {
    routes = await connect({ ...natsOptions, name: `thingstead ${name} routes`, noEcho: true });
    groups = await connect({ ...natsOptions, name: `thingstead ${name} groups` });
  } catch (err) {
    throw new Error(
      `cluster mode: cannot reach NATS at ${servers.join(', ')} (${(err as Error).message}); start NATS or fix THINGSTEAD_NATS_URL`,
      { cause: err },
    );
  }
  const directory = new ClusterDirectory(db, nodeId);
  await directory.init(name);

  let core: Core | null = null;
  let store: MqttStore | null = null;
  let bus: NatsBus | null = null;
  let closing = false;
  let natsDown = false;
  /** Directory writes in flight (offline/forget), awaited on close. */
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>, what: string) => {
    const q = p.catch((err: unknown) => warn({ err, what }, 'cluster directory write failed'));
    pending.add(q);
    void q.finally(() => pending.delete(q));
  };

  const registers = [options.metrics];
  const takeovers = new Counter({
    name: 'thingstead_cluster_takeovers_total',
    help: 'Sessions taken over from another node at CONNECT, by how (released by a live node, or read after it died)',
    labelNames: ['how'],
    registers,
  });
  const takeoverSeconds = new Histogram({
    name: 'thingstead_cluster_takeover_seconds',
    help: 'CONNECT to session in place on this node, when another node held the client id',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const adopted = new Counter({
    name: 'thingstead_cluster_adopted_total',
    help: 'Client ids adopted from dead or departed nodes, by kind (persistent session or connection)',
    labelNames: ['kind'],
    registers,
  });
  const busCount = (metric: string, help: string, read: (b: NatsBus) => number) => {
    let last = 0;
    new Counter({
      name: `thingstead_cluster_${metric}_total`,
      help,
      registers,
      collect() {
        if (bus === null) return;
        const now = read(bus);
        if (now > last) this.inc(now - last);
        last = now;
      },
    });
  };
  busCount('sent', 'Messages published to NATS for other nodes', (b) => b.counts.sent);
  busCount('received', 'Messages received from other nodes and delivered here', (b) => b.counts.received);
  busCount(
    'duplicates',
    "Copies of one message dropped (it matched several of this node's subscriptions)",
    (b) => b.counts.duplicates,
  );
  busCount(
    'undecodable',
    'Messages from NATS that were not Thingstead frames (dropped)',
    (b) => b.counts.undecodable,
  );
  busCount(
    'unrouted',
    'Messages other nodes may not have received: published while NATS was unreachable, in the 200 ms before that was noticed, or before the other nodes had re-subscribed after it came back',
    (b) => b.counts.unrouted,
  );
  busCount(
    'route_ack_failures',
    'QoS 1/2 PUBLISHes not acknowledged as routed (NATS did not confirm in time)',
    (b) => b.counts.ackFailures,
  );
  new Gauge({
    name: 'thingstead_cluster_nats_connected',
    help: '1 while this node is connected to NATS',
    registers,
    collect() {
      this.set(natsDown ? 0 : 1);
    },
  });
  new Gauge({
    name: 'thingstead_cluster_routes',
    help: "NATS subscriptions this node holds for its sessions' filters",
    registers,
    collect() {
      this.set(bus?.routeCount ?? 0);
    },
  });

  const watch = async (nc: NatsConnection, which: string) => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        natsDown = true;
        if (which === 'routes') bus?.disconnected();
        log.warn(
          { which },
          'cluster: NATS connection lost; reconnecting (messages for other nodes are not routed meanwhile)',
        );
      } else if (s.type === Events.Reconnect) {
        natsDown = false;
        // Gossip sent while away is lost: everyone re-sends their interest.
        if (which === 'routes') bus?.reconnected();
        log.info({ which }, 'cluster: NATS connection back');
      }
    }
  };
  void watch(routes, 'routes');
  void watch(groups, 'groups');

  const connRecord = (claim: ConnectClaim): ConnRecord => ({
    principalId: claim.subject.principal.id,
    ipAddress: claim.subject.info.remoteAddress,
    sessionIdentifier: '',
    thingName: claim.subject.principal.thingName,
  });

  /** The disconnected event of a connection that was up on a node that died. */
  const lostConnection = (clientId: string, text: string | null) => {
    if (text === null || core === null) return;
    try {
      const r = JSON.parse(text) as ConnRecord;
      core.lifecycle.disconnected(
        {
          clientId,
          sessionIdentifier: r.sessionIdentifier,
          principalId: r.principalId,
          ipAddress: r.ipAddress,
          thingName: r.thingName,
        },
        'connection_lost',
      );
    } catch {
      // An unreadable record costs only the event.
    }
  };

  /** A will held for its delay on a session now here (stored, so it survives this node too). */
  const holdWill = (k: Core, clientId: string, pending: PendingWill) => {
    const s = k.sessions.get(clientId)!;
    const stored: StoredWill = {
      topic: pending.will.topic,
      payload: pending.will.payload,
      qos: pending.will.qos,
      retain: pending.will.retain,
      properties: pending.will.properties,
      fireAt: pending.fireAt,
      principal: pending.publisher.principal,
      info: { transport: 'tcp', remoteAddress: '', remotePort: 0, localPort: 0 },
    };
    restoreWill(k, s, stored);
    k.persist({ op: 'will', clientId, will: stored });
  };

  /** Bring a stored session here (offline); publishes the wills of one that expired meanwhile. */
  const loadSession = async (k: Core, clientId: string): Promise<boolean> => {
    const stored = await store!.loadSession!(clientId);
    if (stored === null || k.sessions.has(clientId)) return k.sessions.has(clientId);
    const overdue: PendingWill[] = [];
    const s = k.restoreSession(stored, overdue);
    for (const w of overdue) publishWill(k, w);
    if (s !== null && stored.disconnectedAt === null) {
      // It was connected when its node died: offline from now.
      k.persist({
        op: 'session',
        clientId,
        protocolVersion: s.protocolVersion,
        expiryInterval: s.expiryInterval,
        disconnectedAt: s.disconnectedAt,
      });
    }
    return s !== null;
  };

  const adopt = async (k: Core, client: AdoptedClient) => {
    if (k.sessions.has(client.clientId)) return;
    const here = client.persistent && (await loadSession(k, client.clientId));
    adopted.inc({ kind: here ? 'session' : 'connection' });
    lostConnection(client.clientId, client.conn);
    const will = client.will !== null ? decodeClaimWill(client.clientId, client.will) : null;
    if (will !== null) {
      if (here && will.will.delay > 0) holdWill(k, client.clientId, will);
      else publishWill(k, will);
    }
    if (!here) await directory.forget(client.clientId, directory.stamp());
  };

  let sweeping = false;
  const sweep = async () => {
    if (sweeping || closing || core === null) return;
    sweeping = true;
    try {
      await directory.heartbeat({
        connections: core.connections.size,
        sessions: core.sessions.size,
        routes: bus?.routeCount ?? 0,
        sent: bus?.counts.sent ?? 0,
        received: bus?.counts.received ?? 0,
        nats: natsDown ? 'down' : 'up',
      });
      const found = await directory.adoptOrphans(c.deadAfterMs);
      for (const dead of found.deadNodes)
        log.warn({ node: dead }, 'cluster: node not heard of; adopting what it owned');
      for (const client of found.clients) await adopt(core, client);
      if (found.clients.length)
        log.info({ adopted: found.clients.length }, 'cluster: adopted client sessions');
    } catch (err) {
      warn({ err }, 'cluster heartbeat or adoption failed; retrying');
    } finally {
      sweeping = false;
    }
  };
  const timer = setInterval(() => void sweep(), c.heartbeatMs);
  timer.unref();

  /** Release a client's session to the node taking it (answering once its state is written). */
  const release = (clientId: string, respond: (held: boolean) => void) => {
    const k = core;
    const s = k?.sessions.get(clientId);
    if (!k || !s) return respond(false);
    if (s.conn) s.conn.close('duplicate_clientid', RC.SESSION_TAKEN_OVER, 'session taken over');
    // A clean session ended with its connection; a persistent one was written by onClosed.
    if (k.sessions.get(clientId) === s) k.evictSession(s);
    k.afterDurable(() => respond(true));
  };

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  routes.subscribe(`${prefix}.node.${nodeId}.release`, {
    callback: (err, msg) => {
      if (err) return warn({ err }, 'cluster release subscription');
      const clientId = decoder.decode(msg.data);
      release(clientId, (held) => msg.respond(encoder.encode(held ? 'released' : 'absent')));
    },
  });
  routes.subscribe(`${prefix}.left`, { callback: () => void sweep() });

  /** Ask `owner` to release the session: 'released' | 'absent' | 'dead'. */
  const askRelease = async (owner: string, clientId: string): Promise<string> => {
    try {
      const reply = await routes.request(`${prefix}.node.${owner}.release`, encoder.encode(clientId), {
        timeout: c.takeoverTimeoutMs,
      });
      return decoder.decode(reply.data);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '503') return 'dead';
      // No answer in time: dead if the directory no longer hears of it, else refuse this CONNECT for now.
      if (!(await directory.alive(owner, c.deadAfterMs))) return 'dead';
      throw err;
    }
  };

  const port: ClusterPort = {
    async acquire(claim) {
      const t0 = performance.now();
      const k = core!;
      const { previous, previousWill, previousConn } = await directory.claim(
        claim.clientId,
        claim.persistent,
        encodeClaimWill(claim),
        connRecord(claim),
      );
      if (previous === nodeId) return;
      let deadWill: PendingWill | null = null;
      if (previous !== null) {
        const how = await askRelease(previous, claim.clientId);
        if (how === 'dead') {
          lostConnection(claim.clientId, previousConn);
          if (previousWill !== null) deadWill = decodeClaimWill(claim.clientId, previousWill);
        }
        takeovers.inc({ how: how === 'dead' ? 'dead_owner' : how });
      }
      if (!k.sessions.has(claim.clientId)) await loadSession(k, claim.clientId);
      if (deadWill !== null) {
        // [MQTT-3.1.3-9] a delayed will is cancelled by resuming the session in time; else it is due.
        const resumes = k.sessions.has(claim.clientId) && !claim.cleanStart && deadWill.will.delay > 0;
        if (!resumes) publishWill(k, deadWill);
      }
      if (previous !== null) takeoverSeconds.observe((performance.now() - t0) / 1000);
    },
    // Both run after the current turn: a CONNECT that claimed the id ends the old session (clean start) or
    // closes the old connection (take-over on this node) before its own session is in place, and its
    // claim must stay. The stamp keeps a claim made later (a reconnect) from being touched.
    ended(clientId) {
      const at = directory.stamp();
      setImmediate(() => {
        if (!core?.sessions.has(clientId)) track(directory.forget(clientId, at), 'forget');
      });
    },
    offline(clientId) {
      const at = directory.stamp();
      setImmediate(() => {
        if (!core?.sessions.get(clientId)?.conn) track(directory.offline(clientId, at), 'offline');
      });
    },
  };

  return {
    nodeId,
    name,
    async attach(k, s) {
      if (!s.loadSession) throw new Error('cluster mode needs a store shared by the nodes (PostgreSQL)');
      core = k;
      store = s;
      bus = new NatsBus(k, routes, groups, prefix, nodeId, c.routeAckTimeoutMs, (err, what) =>
        warn({ err, what }, 'cluster bus error'),
      );
      k.bus = bus;
      k.cluster = port;
      k.retainedChanged = (op) => bus!.retainedChanged(op);
      k.sharedLocalFirst = c.sharedSubscriptions === 'local';
      bus.start();
      await sweep();
    },
    async view() {
      const now = Date.now();
      const nodes = await directory.nodes();
      return {
        cluster: c.name,
        node: { id: nodeId, name },
        nodes: nodes.map((n) => ({ ...n, alive: now - n.seenAt < c.deadAfterMs, self: n.nodeId === nodeId })),
      };
    },
    health() {
      return natsDown ? ['cluster: NATS unreachable (messages are not routed to other nodes)'] : [];
    },
    async close() {
      closing = true;
      clearInterval(timer);
      // The directory writes of the sessions the broker's close just ended or wrote are issued a turn later.
      await new Promise((r) => setImmediate(r));
      await Promise.all([...pending]);
      await directory.leave().catch((err: unknown) => warn({ err }, 'cluster leave failed'));
      try {
        routes.publish(`${prefix}.left`, encoder.encode(nodeId));
        await routes.drain();
        await groups.drain();
      } catch {
        // Already closed.
      }
    },
  };
}
