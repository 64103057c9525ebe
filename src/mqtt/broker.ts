import type { Broker, BrokerOptions } from './types.js';

/** Placeholder until the broker core lands (issue 2). */
export function createBroker(_options: BrokerOptions): Broker {
  throw new Error('broker not implemented yet');
}
