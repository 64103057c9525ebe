/**
 * The simulated fleet (issue 15): `thingstead sim --things N --profile <file>`. Things that publish
 * telemetry by pattern (periodic, noise, drift, bursts), report and follow their shadows and run jobs, over
 * MQTT with mutual TLS, each with its own certificate; for demos, tests and load. Onboarding (making the
 * things and certificates) is the CLI's part (src/cli/sim.ts, through the API); this context only runs them.
 *
 * Files by role: profile.ts (the profile file and the value patterns), fleet.ts (the devices and the report).
 * Imports: no other context (it talks to the platform over the wire only).
 */
export { parseProfile, valueAt, ProfileError, PATTERNS, type Profile, type Measure } from './profile.js';
export {
  runFleet,
  Reservoir,
  type SimDevice,
  type SimOptions,
  type SimReport,
  type SimProgress,
  type Percentiles,
} from './fleet.js';
