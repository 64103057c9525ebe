import type { ArnScope } from './evaluate.js';
import type { StartedContext } from '../api/index.js';
import { policyOperations, type PrincipalResolver } from './api.js';
import type { ChangeChannel } from '../events/index.js';
import { openPolicyService, type PolicyService, type TargetKind } from './service.js';
import type { Database } from '../store/index.js';
import type { ResourceTags } from '../tags/index.js';

/**
 * Start the policy context: the policy service and its AWS-compatible operations.
 * `resolver` and `targetExists` are asked per request (they read contexts started after this one).
 */
export async function startPolicy(deps: {
  readonly db: Database;
  readonly scope: ArnScope;
  readonly events: ChangeChannel;
  readonly resolver?: PrincipalResolver;
  readonly targetExists?: (target: string, kind: TargetKind, name: string) => Promise<boolean>;
  /** Keeps the tags CreatePolicy is given (src/tags). */
  readonly tags?: ResourceTags;
}): Promise<StartedContext<PolicyService>> {
  const policies = await openPolicyService({ db: deps.db, scope: deps.scope, events: deps.events });
  return {
    name: 'policy',
    service: policies,
    operations: policyOperations(policies, {
      scope: deps.scope,
      resolver: deps.resolver,
      targetExists: deps.targetExists,
      tags: deps.tags,
    }),
    close: () => policies.close(),
  };
}
