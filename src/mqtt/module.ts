import type { StartedContext } from '../api/index.js';
import { createBroker } from './broker.js';
import { dataPlaneOperations } from './data-plane.js';
import type { Broker, BrokerOptions } from './types.js';

/**
 * Start the MQTT broker context (its transports are src/transport's listeners), with its part of the AWS
 * data plane (Publish, GetRetainedMessage, ListRetainedMessages: data-plane.ts) as operations.
 */
export async function startBroker(options: BrokerOptions): Promise<StartedContext<Broker>> {
  const broker = createBroker(options);
  await broker.start();
  return {
    name: 'mqtt',
    service: broker,
    operations: dataPlaneOperations(broker, options.config.limits),
    close: () => broker.close(),
  };
}
