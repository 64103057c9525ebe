import { z } from 'zod';
import { iotOperation as op, validateInput, type AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import { tagList, type ResourceTags } from '../tags/index.js';
import type { AuthContext } from './context.js';
import { bindPolicies, compilePolicy, type ArnScope, type CompiledPolicy } from './evaluate.js';
import { parseTarget, type PolicyService, type TargetKind } from './service.js';

/**
 * Policy operations of the AWS control plane (reference §3.3; routes from the @aws-sdk/client-iot model),
 * including GetEffectivePolicies and TestAuthorization, which evaluate with the same engine the broker uses.
 */

/** Resolves a principal the way a connection would see it (certificate -> thing -> groups). */
export interface PrincipalResolver {
  /** Ancestor group names of a thing group, parent first (ListAttachedPolicies recursive). */
  groupAncestors?(thingGroupName: string): Promise<readonly string[]>;
  resolve(
    principal: string,
    clientId: string | undefined,
  ): Promise<{ targets: readonly string[]; context: AuthContext }>;
}

const ACTION_TYPES: Record<string, string> = {
  PUBLISH: 'iot:Publish',
  SUBSCRIBE: 'iot:Subscribe',
  RECEIVE: 'iot:Receive',
  CONNECT: 'iot:Connect',
};

const PAGE_QUERY = {
  marker: { type: 'string' },
  pageSize: { type: 'integer' },
  ascendingOrder: { name: 'isAscendingOrder', type: 'boolean' },
} as const;

function requireString(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v) throw E.MissingParameter({ name: what });
  return v;
}

/** Marker pagination over an in-memory list (names are unique and sorted). */
function pageOf<T>(items: T[], marker: unknown, size: unknown): { page: T[]; nextMarker?: string } {
  const n = typeof size === 'number' ? Math.min(Math.max(size, 1), 250) : 250;
  const start =
    typeof marker === 'string' && marker ? Number(Buffer.from(marker, 'base64').toString()) || 0 : 0;
  const page = items.slice(start, start + n);
  return start + n < items.length
    ? { page, nextMarker: Buffer.from(String(start + n)).toString('base64') }
    : { page };
}

/** Every policy operation, bound to the policy service. */
export function policyOperations(
  policies: PolicyService,
  options: {
    scope: ArnScope;
    resolver?: PrincipalResolver;
    /** Does an AttachPolicy target exist (certificate registered, thing group created)? Default: yes. */
    targetExists?: (target: string, kind: TargetKind, name: string) => Promise<boolean>;
    /** Keeps CreatePolicy's `tags` (src/tags); DeletePolicy forgets them. */
    tags?: ResourceTags;
  },
): AwsOperation[] {
  /** AttachPolicy: the policy must exist, then the target must be valid and exist (AWS's order of errors). */
  const attach = async (policyName: string, target: string) => {
    policies.getPolicy(policyName);
    const t = parseTarget(target);
    if (options.targetExists && !(await options.targetExists(target, t.kind, t.name)))
      throw E.PolicyTargetNotFound({ target });
    await policies.attachPolicy(policyName, target);
  };
  const ref = (name: string) => ({ policyName: name, policyArn: policies.policyArn(name) });
  const effective = async (principal: string | undefined, clientId: string | undefined) => {
    if (!principal) return { targets: [] as string[], context: { clientId } as AuthContext };
    if (!options.resolver) return { targets: [principal], context: { clientId } as AuthContext };
    return options.resolver.resolve(principal, clientId).catch((err: unknown) => {
      throw E.PrincipalUnresolvable({ principal, reason: (err as Error).message });
    });
  };

  return [
    op('CreatePolicy', 'POST', '/policies/{policyName}', async (i) => {
      const tags = i.tags === undefined ? undefined : validateInput(z.object({ tags: tagList }), i).tags;
      options.tags?.check(tags);
      const p = await policies.createPolicy(String(i.policyName), i.policyDocument);
      await options.tags?.add(p.arn, tags);
      return {
        policyName: p.name,
        policyArn: p.arn,
        policyDocument: p.document,
        policyVersionId: p.versionId,
      };
    }),
    op('GetPolicy', 'GET', '/policies/{policyName}', (i) => {
      const p = policies.getPolicy(String(i.policyName));
      return {
        policyName: p.name,
        policyArn: p.arn,
        policyDocument: p.document,
        defaultVersionId: p.defaultVersionId,
        creationDate: new Date(p.createdAt),
        lastModifiedDate: new Date(p.lastModifiedAt),
        generationId: p.generationId,
      };
    }),
    op(
      'ListPolicies',
      'GET',
      '/policies',
      (i) => {
        const r = policies.listPolicies({
          marker: i.marker,
          pageSize: i.pageSize,
          ascending: i.ascendingOrder,
        });
        return { policies: r.policies, ...(r.nextMarker ? { nextMarker: r.nextMarker } : {}) };
      },
      { query: PAGE_QUERY },
    ),
    op('DeletePolicy', 'DELETE', '/policies/{policyName}', async (i) => {
      await policies.deletePolicy(String(i.policyName));
      await options.tags?.removeAll(policies.policyArn(String(i.policyName)));
    }),
    op(
      'CreatePolicyVersion',
      'POST',
      '/policies/{policyName}/version',
      async (i) => {
        const v = await policies.createPolicyVersion(
          String(i.policyName),
          i.policyDocument,
          i.setAsDefault === true,
        );
        return {
          policyArn: policies.policyArn(String(i.policyName)),
          policyDocument: v.document,
          policyVersionId: v.versionId,
          isDefaultVersion: v.isDefaultVersion,
        };
      },
      { query: { setAsDefault: { type: 'boolean' } } },
    ),
    op('ListPolicyVersions', 'GET', '/policies/{policyName}/version', (i) => ({
      policyVersions: policies.listPolicyVersions(String(i.policyName)).map((v) => ({
        versionId: v.versionId,
        isDefaultVersion: v.isDefaultVersion,
        createDate: new Date(v.createdAt),
      })),
    })),
    op('GetPolicyVersion', 'GET', '/policies/{policyName}/version/{policyVersionId}', (i) => {
      const v = policies.getPolicyVersion(String(i.policyName), String(i.policyVersionId));
      return {
        policyArn: v.policy.arn,
        policyName: v.policy.name,
        policyDocument: v.document,
        policyVersionId: v.versionId,
        isDefaultVersion: v.isDefaultVersion,
        creationDate: new Date(v.createdAt),
        lastModifiedDate: new Date(v.createdAt),
        generationId: v.policy.generationId,
      };
    }),
    op('SetDefaultPolicyVersion', 'PATCH', '/policies/{policyName}/version/{policyVersionId}', async (i) => {
      await policies.setDefaultPolicyVersion(String(i.policyName), String(i.policyVersionId));
    }),
    op('DeletePolicyVersion', 'DELETE', '/policies/{policyName}/version/{policyVersionId}', async (i) => {
      await policies.deletePolicyVersion(String(i.policyName), String(i.policyVersionId));
    }),
    op('AttachPolicy', 'PUT', '/target-policies/{policyName}', async (i) => {
      await attach(String(i.policyName), requireString(i.target, 'target'));
    }),
    op('DetachPolicy', 'POST', '/target-policies/{policyName}', async (i) => {
      await policies.detachPolicy(String(i.policyName), requireString(i.target, 'target'));
    }),
    op(
      'ListAttachedPolicies',
      'POST',
      '/attached-policies/{target}',
      async (i) => {
        const target = String(i.target);
        let names = policies.policiesOf(target);
        const group = /:thinggroup\/(.+)$/.exec(target)?.[1];
        if (i.recursive === true && group && options.resolver?.groupAncestors) {
          // A group's effective policies include those of its ancestors.
          const prefix = target.slice(0, target.length - group.length);
          const ancestors = await options.resolver.groupAncestors(group);
          names = [
            ...new Set([target, ...ancestors.map((g) => prefix + g)].flatMap((t) => policies.policiesOf(t))),
          ];
        } else if (i.recursive === true && options.resolver && !group) {
          const r = await effective(target, undefined);
          names = [...new Set(r.targets.flatMap((t) => policies.policiesOf(t)))];
        }
        const { page, nextMarker } = pageOf(names, i.marker, i.pageSize);
        return { policies: page.map(ref), ...(nextMarker ? { nextMarker } : {}) };
      },
      {
        query: { recursive: { type: 'boolean' }, marker: { type: 'string' }, pageSize: { type: 'integer' } },
        readOnly: true,
      },
    ),
    op(
      'ListTargetsForPolicy',
      'POST',
      '/policy-targets/{policyName}',
      (i) => {
        policies.getPolicy(String(i.policyName));
        const { page, nextMarker } = pageOf(policies.targetsOf(String(i.policyName)), i.marker, i.pageSize);
        return { targets: page, ...(nextMarker ? { nextMarker } : {}) };
      },
      { query: { marker: { type: 'string' }, pageSize: { type: 'integer' } }, readOnly: true },
    ),
    // Deprecated principal-policy forms still used by older scripts and the AWS CLI.
    op(
      'AttachPrincipalPolicy',
      'PUT',
      '/principal-policies/{policyName}',
      async (i) => {
        await attach(String(i.policyName), requireString(i.principal, 'principal'));
      },
      { headers: { principal: 'x-amzn-iot-principal' } },
    ),
    op(
      'DetachPrincipalPolicy',
      'DELETE',
      '/principal-policies/{policyName}',
      async (i) => {
        await policies.detachPolicy(String(i.policyName), requireString(i.principal, 'principal'));
      },
      { headers: { principal: 'x-amzn-iot-principal' } },
    ),
    op(
      'ListPrincipalPolicies',
      'GET',
      '/principal-policies',
      (i) => {
        const { page, nextMarker } = pageOf(
          policies.policiesOf(requireString(i.principal, 'principal')),
          i.marker,
          i.pageSize,
        );
        return { policies: page.map(ref), ...(nextMarker ? { nextMarker } : {}) };
      },
      { headers: { principal: 'x-amzn-iot-principal' }, query: PAGE_QUERY },
    ),
    op(
      'ListPolicyPrincipals',
      'GET',
      '/policy-principals',
      (i) => {
        const name = requireString(i.policyName, 'policyName');
        policies.getPolicy(name);
        const { page, nextMarker } = pageOf(policies.targetsOf(name), i.marker, i.pageSize);
        return { principals: page, ...(nextMarker ? { nextMarker } : {}) };
      },
      { headers: { policyName: 'x-amzn-iot-policy' }, query: PAGE_QUERY },
    ),
    op(
      'GetEffectivePolicies',
      'POST',
      '/effective-policies',
      async (i) => {
        const r = await effective(i.principal, i.thingName);
        return {
          effectivePolicies: policies.policiesFor(r.targets).map((p) => ({
            ...ref(p.name),
            policyDocument: p.text,
          })),
        };
      },
      { query: { thingName: { type: 'string' } }, readOnly: true },
    ),
    op(
      'TestAuthorization',
      'POST',
      '/test-authorization',
      async (i) => {
        const clientId = typeof i.clientId === 'string' ? i.clientId : undefined;
        const r = await effective(i.principal, clientId);
        const skip = new Set<string>(Array.isArray(i.policyNamesToSkip) ? i.policyNamesToSkip : []);
        const add: CompiledPolicy[] = (Array.isArray(i.policyNamesToAdd) ? i.policyNamesToAdd : []).map(
          (n: string) => {
            const c = policies.compiled(n);
            if (!c) throw E.PolicyNotFound({ policyName: n });
            return c;
          },
        );
        const set = [...policies.policiesFor(r.targets).filter((p) => !skip.has(p.name)), ...add];
        const bound = bindPolicies(set, { ...r.context, clientId: clientId ?? r.context.clientId });
        if (!Array.isArray(i.authInfos) || i.authInfos.length === 0) {
          throw E.AuthInfosRequired();
        }
        const authResults = (i.authInfos as Array<{ actionType?: string; resources?: string[] }>).map(
          (info) => {
            const action = ACTION_TYPES[info.actionType ?? ''];
            if (!action) throw E.AuthInfoActionType({ actionTypes: Object.keys(ACTION_TYPES) });
            const allowed = new Set<string>();
            const explicit = new Set<string>();
            let decision: 'ALLOWED' | 'EXPLICIT_DENY' | 'IMPLICIT_DENY' = 'ALLOWED';
            for (const resource of info.resources ?? []) {
              const d = bound.explain(action, resource);
              for (const m of d.matched) (m.effect === 'Deny' ? explicit : allowed).add(m.policyName);
              if (d.reason === 'explicit-deny') decision = 'EXPLICIT_DENY';
              else if (d.reason === 'implicit-deny' && decision === 'ALLOWED') decision = 'IMPLICIT_DENY';
            }
            const implicit =
              decision === 'IMPLICIT_DENY' ? set.map((p) => p.name).filter((n) => !allowed.has(n)) : [];
            return {
              authInfo: info,
              allowed: { policies: [...allowed].map(ref) },
              denied: {
                implicitDeny: { policies: implicit.map(ref) },
                explicitDeny: { policies: [...explicit].map(ref) },
              },
              authDecision: decision,
              missingContextValues: [],
            };
          },
        );
        return { authResults };
      },
      { query: { clientId: { type: 'string' } }, readOnly: true },
    ),
  ];
}

/** Validate a document without storing it (the CLI's `policy validate`). */
export function validatePolicyDocument(text: string): void {
  compilePolicy('validate', '1', text);
}
