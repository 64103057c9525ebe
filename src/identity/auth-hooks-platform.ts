import type { AwsOperation } from '../api/index.js';
import type { Config } from '../config/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger, Registry } from '../observability/index.js';
import { openPolicyService, policyOperations, type PolicyService } from '../policy/index.js';
import type { Database } from '../store/index.js';
import { certificateOperations } from './api.js';
import { startDeviceHttps, type DeviceHttps } from './auth-hooks-https.js';
import {
  createDeviceAuth,
  type RefreshScope,
  type AccessKeyLookup,
  type DeviceAuth,
  type PrincipalDirectory,
} from './auth-hooks.js';
import { openCertificateService, type CertificateService } from './certificates-service.js';
import type { ServerTls } from './pki.js';

/**
 * Platform wiring of device security: the certificate and policy services, the broker's AuthHooks, their
 * AWS operations, and live enforcement. Built before the broker (which needs the hooks) and completed by
 * `attach` once the broker, registry and listeners exist.
 */

/** The registry operations device security reads (duck-typed so identity does not depend on registry). */
export interface RegistryView {
  listPrincipalThings(input: { principal: string; maxResults?: number }): Promise<{ things: string[] }>;
  describeThing(input: {
    thingName: string;
  }): Promise<{ thingTypeName?: string; attributes?: Record<string, string> }>;
  listThingGroupsForThing(input: {
    thingName: string;
    maxResults?: number;
    nextToken?: string;
  }): Promise<{ thingGroups: Array<{ groupName: string }>; nextToken?: string | undefined }>;
  describeThingGroup(input: { thingGroupName: string }): Promise<{
    thingGroupMetadata?: { rootToParentThingGroups?: Array<{ groupName?: string }> | undefined };
  }>;
  getRegistrationCode(): Promise<{ registrationCode: string }>;
}

/** Registry operations after which live principals are re-resolved (attachments, membership, attributes). */
const REFRESH_AFTER = new Set([
  'AttachThingPrincipal',
  'DetachThingPrincipal',
  'AddThingToThingGroup',
  'RemoveThingFromThingGroup',
  'UpdateThingGroupsForThing',
  'UpdateThing',
  'DeleteThing',
  'UpdateThingGroup',
  'DeleteThingGroup',
  'CreateDynamicThingGroup',
  'UpdateDynamicThingGroup',
  'DeleteDynamicThingGroup',
]);

const nameFromArn = (arn: unknown) => (typeof arn === 'string' ? arn.split('/').pop() : undefined);

/** Which live connections a registry change can concern (undefined: all of them). */
function refreshScope(operation: string, input: Record<string, any>): RefreshScope | undefined {
  if (operation.includes('Dynamic')) return undefined; // membership may change for any thing
  const thingName = (input.thingName as string | undefined) ?? nameFromArn(input.thingArn);
  if (operation === 'UpdateThingGroup' || operation === 'DeleteThingGroup') {
    return {
      thingGroupName: (input.thingGroupName as string | undefined) ?? nameFromArn(input.thingGroupArn),
    };
  }
  if (!thingName && typeof input.principal !== 'string') return undefined;
  return { thingName, principal: typeof input.principal === 'string' ? input.principal : undefined };
}

export interface DeviceSecurity {
  readonly certificates: CertificateService;
  readonly policies: PolicyService;
  readonly auth: DeviceAuth;
  /** Certificate and policy operations; plus the registry's operations wrapped to refresh live principals. */
  operations(registryOperations: readonly AwsOperation[]): AwsOperation[];
  /**
   * Start live enforcement (disconnects, re-checks), keep the TLS trust lists in sync, and start the device
   * HTTPS port when configured. Resolves with that port (null when off).
   */
  attach(
    broker: Broker,
    listeners: { setTrustedCas(pems: readonly string[]): void },
  ): Promise<{ deviceHttpsPort: number | null }>;
  close(): Promise<void>;
}

function registryDirectory(registry: () => RegistryView | null): PrincipalDirectory {
  const need = () => {
    const r = registry();
    if (!r) throw new Error('registry not ready');
    return r;
  };
  return {
    async thingsOfPrincipal(arn) {
      return (await need().listPrincipalThings({ principal: arn, maxResults: 250 })).things;
    },
    async describeThing(thingName) {
      try {
        const t = await need().describeThing({ thingName });
        return { typeName: t.thingTypeName, attributes: t.attributes };
      } catch {
        return undefined;
      }
    },
    async groupsOfThing(thingName) {
      const r = need();
      const names = new Set<string>();
      let nextToken: string | undefined;
      do {
        const page = await r.listThingGroupsForThing({ thingName, maxResults: 250, nextToken });
        for (const g of page.thingGroups) names.add(g.groupName);
        nextToken = page.nextToken || undefined;
      } while (nextToken);
      // Policies of ancestor groups apply to the things of their descendants.
      for (const g of [...names]) {
        const d = await r.describeThingGroup({ thingGroupName: g }).catch(() => undefined);
        for (const a of d?.thingGroupMetadata?.rootToParentThingGroups ?? [])
          if (a.groupName) names.add(a.groupName);
      }
      return [...names];
    },
  };
}

/**
 * @example const security = await createDeviceSecurity({ config, db, tls, logger, metrics, registry: () => registry, accessKeys });
 */
export async function createDeviceSecurity(options: {
  config: Config;
  db: Database;
  tls: ServerTls;
  logger: Logger;
  metrics: Registry;
  /** Late-bound: the registry is created after the broker. */
  registry: () => RegistryView | null;
  accessKeys?: AccessKeyLookup;
}): Promise<DeviceSecurity> {
  const { config, db, tls } = options;
  const scope = { region: config.region, accountId: config.accountId };
  const log = options.logger.child({ ctx: 'security' });
  const certificates = await openCertificateService({
    db,
    ca: { certPem: tls.caPem, keyPem: tls.caKeyPem ?? '' },
    scope,
    registrationCode: async () => (await options.registry()?.getRegistrationCode())?.registrationCode,
  });
  const policies = await openPolicyService({
    db,
    scope,
    targetExists: async (_target, kind, name) => {
      if (kind === 'cert')
        return certificates.describe(name).then(
          () => true,
          () => false,
        );
      if (kind === 'thinggroup') {
        const r = options.registry();
        return r
          ? r.describeThingGroup({ thingGroupName: name }).then(
              () => true,
              () => false,
            )
          : true;
      }
      return true;
    },
  });
  certificates.setAttachments({
    thingsOf: async (arn) =>
      (await options.registry()?.listPrincipalThings({ principal: arn, maxResults: 250 }))?.things ?? [],
    policiesOf: async (arn) => policies.policiesOf(arn),
    detachAllPolicies: (arn) => policies.detachAll(arn),
  });
  const auth = createDeviceAuth({
    certificates,
    policies,
    directory: registryDirectory(options.registry),
    scope,
    logger: options.logger,
    metrics: options.metrics,
    allowAnonymous: config.mqtt.allowAnonymous,
    accessKeys: options.accessKeys,
  });
  if (auth.anonymousAllowsAll()) {
    log.warn(
      'DEV MODE: anonymous loopback clients may publish and subscribe to EVERYTHING until a policy is attached to the target "anonymous" (THINGSTEAD_ALLOW_ANONYMOUS is on)',
    );
  }
  let https: DeviceHttps | null = null;
  const resolver = {
    async groupAncestors(thingGroupName: string) {
      const d = await options.registry()?.describeThingGroup({ thingGroupName });
      return (d?.thingGroupMetadata?.rootToParentThingGroups ?? [])
        .map((g) => g.groupName)
        .filter((n): n is string => !!n)
        .reverse();
    },
    async resolve(principal: string, clientId: string | undefined) {
      const r = await auth.resolve(principal, clientId);
      return { targets: r.targets, context: auth.contextFor(r, clientId ?? r.thing?.name) };
    },
  };

  return {
    certificates,
    policies,
    auth,
    operations(registryOperations) {
      const wrapped = registryOperations.map((op) =>
        REFRESH_AFTER.has(op.name)
          ? {
              ...op,
              handler: async (request: Parameters<AwsOperation['handler']>[0]) => {
                const result = await op.handler(request);
                if (op.name === 'DeleteThingGroup') {
                  // A group made again under the same name must not inherit the old group's policies.
                  const group = (request.input?.thingGroupName as string | undefined) ?? '';
                  await policies.detachAll(
                    `arn:aws:iot:${scope.region}:${scope.accountId}:thinggroup/${group}`,
                  );
                }
                auth
                  .refresh(refreshScope(op.name, request.input ?? {}))
                  .catch((err: unknown) => log.warn({ err }, 'principal refresh failed'));
                return result;
              },
            }
          : op,
      );
      return [
        ...wrapped,
        ...certificateOperations(certificates),
        ...policyOperations(policies, { scope, resolver }),
      ];
    },
    async attach(broker, listeners) {
      if (config.deviceHttps.port !== null) {
        https = await startDeviceHttps({
          host: config.deviceHttps.host,
          port: config.deviceHttps.port,
          tls,
          hooks: auth,
          certificates,
          broker,
          logger: options.logger,
          metrics: options.metrics,
        });
      }
      auth.attach(broker, (pems) => {
        listeners.setTrustedCas(pems);
        https?.setTrustedCas(pems);
      });
      return { deviceHttpsPort: https?.port ?? null };
    },
    async close() {
      auth.close();
      await https?.close();
    },
  };
}
