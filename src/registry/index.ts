/**
 * The device registry: things (things.ts), thing types (thing-types.ts), static thing groups (groups.ts),
 * dynamic thing groups (dynamic-groups.ts), billing groups (billing-groups.ts), principals attached to
 * things (principals.ts), fleet search (search.ts, SearchIndex), the fleet-indexing configuration (indexing.ts:
 * `registry.indexingConfiguration()`, `isShadowIndexed`), registry events (events.ts),
 * DescribeEndpoint and GetRegistrationCode, composed in registry.ts. Storage is split alongside
 * (`*-store.ts`, composed in store.ts); its AWS-compatible operations are `registryOperations` (api.ts); `startRegistry`
 * (module.ts) starts it as a context module.
 * Imports: api (its operation declarations), errors, events (change events after each write), store, tags
 * (the tag list schema; its ResourceTags keep the tags given at create time).
 */
export { createRegistry, type RegistryOptions, type ThingRegistry } from './registry.js';
export { registryOperations } from './api.js';
export { startRegistry } from './module.js';
export { createRegistryStore, REGISTRY_MIGRATIONS, type RegistryStore, type ThingRecord } from './store.js';
export {
  parseQuery,
  compileQuery,
  FleetIndex,
  type FieldProvider,
  type FieldValue,
  type IndexedThing,
  type QueryNode,
  type Predicate,
  type SearchContext,
} from './search.js';
export { EVENT_TYPES, type EventType, type PublishFn } from './events.js';
export {
  isShadowIndexed,
  INDEXING_SETTING_KEY,
  type IndexingConfiguration,
  type ThingIndexingConfiguration,
  type ThingGroupIndexingConfiguration,
  type ThingIndexingMode,
} from './indexing.js';
