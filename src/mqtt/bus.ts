/**
 * The seam for routing between broker nodes. The local bus hands every message straight back to this
 * node's router (synchronously: the QoS 0 path never awaits). A NATS bus would publish to the subjects
 * of the topic (levels -> tokens) and subscribe to the subjects matching local filters, calling
 * `deliver` for messages from other nodes; `interest` tells it which filters this node has.
 */
import type { Routed } from './session.js';

export interface Bus {
  /** Route a message published on this node to every node with matching subscriptions (this one too). */
  publish(message: Routed): void;
  /** This node gained (true) or lost (false) its last subscription on `filter`. */
  interest(filter: string, present: boolean): void;
  close(): Promise<void>;
}

/** Single-node bus: delivery is a direct synchronous call into the local router. */
export function createLocalBus(deliver: (message: Routed) => void): Bus {
  return {
    publish: deliver,
    interest: () => undefined,
    close: async () => undefined,
  };
}
