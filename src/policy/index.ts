/**
 * Policy: the AWS IoT policy language (reference §9). Parse and validate documents, compile them on
 * change, bind them to a connection's context (variables substituted as literals), and decide requests
 * with explicit deny over allow and default deny. Owns policies, their versions and attachments to
 * principals, and their AWS-compatible operations; `startPolicy` starts it as a context module.
 * Imports: api (its operation declarations), errors, events, store, tags (CreatePolicy's tags).
 */
export {
  parsePolicyDocument,
  checkPolicyDocument,
  IOT_POLICY_ACTIONS,
  IOT_RESOURCE_TYPES,
  checkVariables,
  MAX_POLICY_CHARS,
  type PolicyDocument,
  type PolicyStatement,
  type PolicyProblem,
  type ConditionClause,
  type Effect,
} from './document.js';
export type { AuthContext, CertificateFields } from './context.js';
export {
  compilePolicy,
  bindPolicies,
  resourceArn,
  BoundPolicies,
  type CompiledPolicy,
  type Decision,
  type DecisionReason,
  type StatementRef,
  type ArnScope,
} from './evaluate.js';
export {
  openPolicyService,
  parseTarget,
  ANONYMOUS_TARGET,
  MAX_VERSIONS,
  MAX_POLICIES_PER_TARGET,
  type PolicyService,
  type PolicyView,
  type PolicyVersionView,
  type PolicySummary,
  type TargetKind,
} from './service.js';
export { openPolicyStore, POLICY_MIGRATIONS, type PolicyStore } from './store.js';
export { startPolicy } from './module.js';
export { policyOperations, validatePolicyDocument, type PrincipalResolver } from './api.js';
