/**
 * The seams for routing between broker nodes (src/cluster implements both over NATS and PostgreSQL).
 *
 * `Bus`: the local bus hands every message straight back to this node's router (synchronously: the QoS 0
 * path never awaits). The cluster bus also publishes each message once to the subjects of its topic and
 * subscribes to the subjects matching this node's session filters (`interest`), delivering what other
 * nodes publish to local sessions only (internal subscribers such as rules run on the publishing node, so
 * once per message in the cluster).
 *
 * `ClusterPort`: one owner per client id in the cluster. A CONNECT waits for `acquire`, which takes the
 * session over from the node holding it (that node closes the old connection with v5 0x8E and writes the
 * session) and installs the stored session here; `ended` says the session is gone from this node.
 */
import type { Routed, WillSpec } from './session.js';
import type { AuthzSubject } from './hooks.js';

export interface Bus {
  /** Route a message published on this node to every node with matching subscriptions (this one too). */
  publish(message: Routed): void;
  /**
   * This node gained (true) or lost (false) its last session subscription on `filter` (without the
   * `$share/{group}/` prefix; `group` is set for shared subscriptions).
   */
  interest(filter: string, present: boolean, group?: string): void;
  /** Messages handed to other nodes so far (0 on the local bus): a PUBLISH compares before and after. */
  readonly sent: number;
  /**
   * `done` runs once every message handed on so far is with the routing layer (NATS has it), or with a
   * reason when that failed or timed out. Immediate on the local bus.
   */
  afterSent(done: (failure: string | null) => void): void;
  close(): Promise<void>;
}

/** Single-node bus: delivery is a direct synchronous call into the local router. */
export function createLocalBus(deliver: (message: Routed) => void): Bus {
  return {
    publish: deliver,
    interest: () => undefined,
    sent: 0,
    afterSent: (done) => done(null),
    close: async () => undefined,
  };
}

/** What a CONNECT tells the cluster about itself when it asks for its client id. */
export interface ConnectClaim {
  readonly clientId: string;
  /** Session Expiry Interval > 0 (the session outlives the connection). */
  readonly persistent: boolean;
  /** Clean Start: an existing session is discarded anyway. */
  readonly cleanStart: boolean;
  /** The will to publish if this node dies while the connection is up (authorized already), or null. */
  readonly will: WillSpec | null;
  readonly subject: AuthzSubject;
}

export interface ClusterPort {
  /** Take the client id's session to this node; rejects (CONNACK refused) when that is not possible now. */
  acquire(claim: ConnectClaim): Promise<void>;
  /** The client's session ended on this node (clean disconnect, expiry, clean start). */
  ended(clientId: string): void;
  /** The client's connection ended and its persistent session stays here offline (its will is settled). */
  offline(clientId: string): void;
}
