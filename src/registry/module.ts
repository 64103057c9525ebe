import type { StartedContext } from '../api/index.js';
import { registryOperations } from './api.js';
import { createRegistry, type RegistryOptions, type ThingRegistry } from './registry.js';

/**
 * Start the registry context: the registry, its AWS-compatible operations and the broker topics it reads
 * connectivity from. (Its `$aws/events/...` messages go out through `service.onPublish`.)
 */
export async function startRegistry(options: RegistryOptions): Promise<StartedContext<ThingRegistry>> {
  const registry = await createRegistry(options);
  return {
    name: 'registry',
    service: registry,
    operations: registryOperations(registry),
    reservedTopics: registry.reservedTopics,
    close: () => registry.close(),
  };
}
