import type { StartedContext } from '../api/index.js';
import { createBroker } from './broker.js';
import type { Broker, BrokerOptions } from './types.js';

/** Start the MQTT broker context (its transports are src/transport's listeners). */
export async function startBroker(options: BrokerOptions): Promise<StartedContext<Broker>> {
  const broker = createBroker(options);
  await broker.start();
  return { name: 'mqtt', service: broker, close: () => broker.close() };
}
