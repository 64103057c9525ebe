import type {
  CertificateAttachments,
  CertificateService,
  DeviceAuth,
  PrincipalDirectory,
} from '../identity/index.js';
import type { Jobs } from '../jobs/index.js';
import type { PolicyService, PrincipalResolver, TargetKind } from '../policy/index.js';
import type { ThingRegistry } from '../registry/index.js';
import type { RulesEngine } from '../rules/index.js';
import type { ResourceExists } from '../tags/index.js';

/**
 * What one context asks of another, adapted in the composition root so that neither imports the other:
 * identity and policy read the registry through these, and nothing reaches back.
 */

/** Identity's view of the registry: a principal's things and a thing's groups (with ancestors). */
export function principalDirectory(registry: ThingRegistry): PrincipalDirectory {
  return {
    async thingsOfPrincipal(arn) {
      return (await registry.listPrincipalThings({ principal: arn, maxResults: 250 })).things;
    },
    async describeThing(thingName) {
      try {
        const t = await registry.describeThing({ thingName });
        return { typeName: t.thingTypeName, attributes: t.attributes };
      } catch {
        return undefined;
      }
    },
    async groupsOfThing(thingName) {
      const names = new Set<string>();
      let nextToken: string | undefined;
      do {
        const page = await registry.listThingGroupsForThing({ thingName, maxResults: 250, nextToken });
        for (const g of page.thingGroups) names.add(g.groupName);
        nextToken = page.nextToken || undefined;
      } while (nextToken);
      // Policies of ancestor groups apply to the things of their descendants.
      for (const g of [...names]) {
        const d = await registry.describeThingGroup({ thingGroupName: g }).catch(() => undefined);
        for (const a of d?.thingGroupMetadata?.rootToParentThingGroups ?? [])
          if (a.groupName) names.add(a.groupName);
      }
      return [...names];
    },
  };
}

/** What DeleteCertificate asks: the certificate's things (registry) and policies (policy). */
export function certificateAttachments(
  registry: ThingRegistry,
  policies: PolicyService,
): CertificateAttachments {
  return {
    thingsOf: async (arn) => (await registry.listPrincipalThings({ principal: arn, maxResults: 250 })).things,
    policiesOf: async (arn) => policies.policiesOf(arn),
    detachAllPolicies: (arn) => policies.detachAll(arn),
  };
}

/**
 * AttachPolicy's target check: a registered certificate, an existing thing group. Policy starts before the
 * registry and identity, so they are read per request (by then every context has started).
 */
export function policyTargetExists(registry: () => ThingRegistry, certificates: () => CertificateService) {
  const exists = (p: Promise<unknown>) =>
    p.then(
      () => true,
      () => false,
    );
  return async (_target: string, kind: TargetKind, name: string): Promise<boolean> => {
    if (kind === 'cert') return exists(certificates().describe(name));
    if (kind === 'thinggroup') return exists(registry().describeThingGroup({ thingGroupName: name }));
    return true;
  };
}

/**
 * TestAuthorization / GetEffectivePolicies: resolve a principal as a connecting device would be. Read per
 * request, like `policyTargetExists`.
 */
export function principalResolver(registry: () => ThingRegistry, auth: () => DeviceAuth): PrincipalResolver {
  return {
    async groupAncestors(thingGroupName: string) {
      const d = await registry().describeThingGroup({ thingGroupName });
      return (d.thingGroupMetadata?.rootToParentThingGroups ?? [])
        .map((g) => g.groupName)
        .filter((n): n is string => !!n)
        .reverse();
    },
    async resolve(principal: string, clientId: string | undefined) {
      const r = await auth().resolve(principal, clientId);
      return { targets: r.targets, context: auth().contextFor(r, clientId ?? r.thing?.name) };
    },
  };
}

/** Time-series group queries: the things of a group and its descendants. */
export function groupMembers(registry: ThingRegistry) {
  return async (group: string): Promise<string[]> => {
    const things: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await registry.listThingsInThingGroup({
        thingGroupName: group,
        recursive: true,
        maxResults: 250,
        nextToken,
      });
      things.push(...page.things);
      nextToken = page.nextToken;
    } while (nextToken);
    return things;
  };
}

/**
 * What TagResource asks before tagging: does the resource exist, per ARN type (the contexts that own
 * taggable resources start after tags, so each is read per request). A type missing here cannot be tagged.
 */
export function taggableResources(
  registry: () => ThingRegistry,
  policies: () => PolicyService,
  rules: () => RulesEngine,
): ResourceExists {
  return {
    thinggroup: async (name) => (await registry().store.getGroup(name)) !== undefined,
    thingtype: async (name) => (await registry().store.getType(name)) !== undefined,
    billinggroup: async (name) => (await registry().store.getBillingGroup(name)) !== undefined,
    policy: async (name) => {
      try {
        policies().getPolicy(name);
        return true;
      } catch {
        return false;
      }
    },
    rule: async (name) => (await rules().store.get(name)) !== undefined,
    ruledestination: async (_name, arn) => (await rules().destinations?.exists(arn)) ?? false,
  };
}

/** The taggable resources of the jobs context (ARN types `job` and `jobtemplate`), read per request. */
export function jobResources(jobs: () => Jobs): ResourceExists {
  return {
    job: async (name) => (await jobs().store.getJob(name)) !== null,
    jobtemplate: async (name) => (await jobs().store.getTemplate(name)) !== null,
  };
}
