/**
 * The whole platform as a library: `createPlatform(config)` wires every context together.
 * Binaries are thin (`thingstead up` parses config and calls this); tests start it in-process on port 0.
 * The one composition root: no context imports it but the CLI.
 * Imports: api, events, identity, mqtt, observability, policy, registry, rules, store, timeseries,
 * transport; types only from config.
 */
export { createPlatform, type Platform, type PlatformEndpoints } from './platform.js';
