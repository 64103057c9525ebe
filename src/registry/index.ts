/**
 * The device registry: things, thing types, static and dynamic thing groups, billing groups, principals,
 * fleet search (SearchIndex), registry events, DescribeEndpoint and GetRegistrationCode; its AWS-compatible
 * operations are in `registryOperations`.
 */
export { createRegistry, type RegistryOptions, type ThingRegistry } from './registry.js';
export { registryOperations } from './api.js';
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
