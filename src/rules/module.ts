import type { StartedContext } from '../api/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import { rulesOperations } from './api.js';
import { RulesEngine, type RulesEngineOptions } from './engine.js';
import { startSources, type SourceConfig } from './sources.js';

/**
 * Start the rules context: the engine on the broker, its operations, and the configured stream sources.
 * Closes the sources first, then the engine (which drains into the outbox).
 */
export async function startRules(
  options: RulesEngineOptions & {
    readonly broker: Broker;
    readonly sources: readonly SourceConfig[];
    readonly sourcesLogger: Logger;
  },
): Promise<StartedContext<RulesEngine>> {
  const { sources: sourceConfigs, sourcesLogger, ...engineOptions } = options;
  const rules = await RulesEngine.start(engineOptions);
  const sources = await startSources({
    sources: sourceConfigs,
    broker: options.broker,
    logger: sourcesLogger,
    natsServers: options.natsServers ?? null,
  }).catch(async (err: unknown) => {
    await rules.close().catch(() => undefined);
    throw err;
  });
  return {
    name: 'rules',
    service: rules,
    operations: rulesOperations(rules),
    async close() {
      await Promise.all(sources.map((s) => s.close()));
      await rules.close();
    },
  };
}
