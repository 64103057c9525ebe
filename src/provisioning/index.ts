/**
 * Fleet provisioning (issue 12; reference §3.6, §8.4): provisioning templates and their language (part A:
 * template*.ts, templates-store.ts, templates-api.ts), and the flows (part B): provisioning by claim over
 * MQTT with ownership tokens, by trusted user (CreateProvisioningClaim), just-in-time provisioning from a
 * registered CA, RegisterThing and bulk registration tasks, the pre-provisioning hook, and a trace of every
 * attempt. Every flow goes through one pipeline (pipeline.ts) whose apply is atomic (apply.ts: a journaled
 * saga over the registry, identity and policy services). `startProvisioning` starts it as a context module.
 * Imports: api, config (types), errors, events, identity, mqtt (types), observability, policy (types),
 * registry (types), store, tags (types), work.
 */
export {
  startProvisioning,
  type Provisioning,
  type ProvisioningOptions,
  type SweepReport,
} from './module.js';
export type { ProvisioningTrace, TraceStep, ProvisioningFlow } from './trace.js';
export { claimPolicyDocument, claimPolicyName } from './certificates.js';
