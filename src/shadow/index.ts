/**
 * Device shadows (reference §8.2, §4): desired and reported state per thing, classic and named, over MQTT
 * (`$aws/things/{thing}/shadow/...`, a reserved-topic service in the broker) and the HTTP data plane
 * (GetThingShadow, UpdateThingShadow, DeleteThingShadow, ListNamedShadowsForThing), with AWS's documents,
 * errors and limits, optimistic concurrency in SQLite or PostgreSQL, shadow fields for fleet search, and
 * Thingstead's extensions (version-ordered delivery, `get` with `sinceVersion`, optional history).
 * `startShadows` starts it as a context module.
 * Imports: api, events, mqtt, registry (types), identity (types), store, observability, errors.
 */
export { startShadows, type Shadows } from './module.js';
export {
  createShadowService,
  shadowTopic,
  DEFAULT_SHADOW_LIMITS,
  type ShadowService,
  type ShadowLimits,
  type ShadowVersionRecord,
} from './service.js';
export { shadowDeviceRoute, shadowHttp, toApiError, type ShadowHttpOp } from './api.js';
export { ShadowError, type ShadowDocument } from './document.js';
export type { ShadowStore, StoredShadow } from './store.js';
