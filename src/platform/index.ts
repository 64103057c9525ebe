/**
 * The whole platform as a library: `createPlatform(config)` wires every context together.
 * Binaries are thin (`thingstead up` parses config and calls this); tests start it in-process on port 0.
 */
export { createPlatform, type Platform, type PlatformEndpoints } from './platform.js';
