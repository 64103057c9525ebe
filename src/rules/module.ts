import type { StartedContext } from '../api/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import type { ResourceTags } from '../tags/index.js';
import { rulesOperations } from './api.js';
import { destinationOperations } from './destinations-api.js';
import { TopicRuleDestinations } from './destinations.js';
import { RulesEngine, type RulesEngineOptions } from './engine.js';
import { startSources, type SourceConfig } from './sources.js';

/**
 * Start the rules context: topic rule destinations (their gate on the http action), the engine on the
 * broker, its operations, and the configured stream sources. Closes the sources first, then the engine
 * (which drains into the outbox), then the destinations (confirmation messages in flight).
 */
export async function startRules(
  options: Omit<RulesEngineOptions, 'httpRefusal'> & {
    readonly broker: Broker;
    readonly sources: readonly SourceConfig[];
    readonly sourcesLogger: Logger;
    /** Keeps the tags of rules and destinations (src/tags). */
    readonly tags?: ResourceTags;
    /** http actions send only to URLs an ENABLED destination covers (config `rules.requireHttpDestinations`). */
    readonly requireHttpDestinations?: boolean;
  },
): Promise<StartedContext<RulesEngine>> {
  const { sources: sourceConfigs, sourcesLogger, tags, requireHttpDestinations, ...engineOptions } = options;
  const destinations = await TopicRuleDestinations.open({
    db: options.db,
    region: options.region ?? 'us-east-1',
    accountId: options.accountId ?? '000000000000',
    logger: options.logger,
    events: options.events,
    requireHttpDestinations,
  });
  const rules = await RulesEngine.start({
    ...engineOptions,
    httpRefusal: (url) => destinations.refusal(url),
    destinations,
  }).catch(async (err: unknown) => {
    await destinations.close();
    throw err;
  });
  const sources = await startSources({
    sources: sourceConfigs,
    broker: options.broker,
    logger: sourcesLogger,
    natsServers: options.natsServers ?? null,
  }).catch(async (err: unknown) => {
    await rules.close().catch(() => undefined);
    await destinations.close();
    throw err;
  });
  return {
    name: 'rules',
    service: rules,
    operations: [...rulesOperations(rules, { tags }), ...destinationOperations(destinations, { tags })],
    async close() {
      await Promise.all(sources.map((s) => s.close()));
      await rules.close();
      await destinations.close();
    },
  };
}
