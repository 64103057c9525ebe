import type { ChangeChannel, ChangeEvent, ChangeOrigin } from '../events/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import type { PolicyService } from '../policy/index.js';
import type { DeviceAuth, RefreshScope } from './auth-hooks.js';
import type { CertificateService } from './certificates-service.js';

/** MQTT 5 DISCONNECT reason: administrative action (a revoked certificate, a deleted access key). */
const ADMINISTRATIVE_ACTION = 0x98;

/**
 * Live enforcement: what the broker does when security-relevant state changes, in this process or in
 * another one sharing the database (change events, src/events). Nothing here polls.
 *
 * - `certificate` leaving ACTIVE, `ca` leaving ACTIVE, `accessKey` deleted: its connections are
 *   disconnected (0x98) before `publish` of the event resolves in the process that made the change.
 * - `ca`: the TLS trust lists are rebuilt (`onTrustedCas`).
 * - registry changes (`principal`, `membership`, `thing`, `thingGroup`): the live principals they can
 *   concern are re-resolved, then iot:Connect is re-checked.
 * - policy changes (the policy service's compiled generation): iot:Connect is re-checked.
 * - `resync` (events may have been lost): everything above, for every live connection.
 * A just-in-time registered certificate is announced on `$aws/events/certificates/registered/<caId>` by the
 * process that registered it.
 *
 * @example const enforcement = startEnforcement({ auth, broker, events, certificates, policies, scope, logger, onTrustedCas });
 */
export function startEnforcement(options: {
  auth: DeviceAuth;
  broker: Broker;
  events: ChangeChannel;
  certificates: CertificateService;
  policies: PolicyService;
  scope: { region: string; accountId: string };
  logger: Logger;
  onTrustedCas?: (pems: string[]) => void;
}): { close(): void } {
  const { auth, broker: b, certificates, scope } = options;
  const log = options.logger.child({ ctx: 'security' });

  const trustedCas = () => {
    if (!options.onTrustedCas) return Promise.resolve();
    return certificates
      .trustedCaPems()
      .then(options.onTrustedCas)
      .catch((err: unknown) => log.error({ err }, 'cannot refresh trusted CAs'));
  };
  const refresh = async (scopeOf?: RefreshScope) => {
    await auth.refresh(b.clients(), scopeOf);
    b.reauthorize();
  };
  const disconnectCertificate = (certificateId: string, status: string) => {
    const n = b.disconnectWhere(
      (c) => c.principal.kind === 'certificate' && c.principal.id === certificateId,
      ADMINISTRATIVE_ACTION,
    );
    if (n) log.info({ certificateId, status, disconnected: n }, 'certificate no longer active');
  };
  /** After lost events: drop connections whose certificate is no longer ACTIVE, then re-resolve all. */
  const resync = async () => {
    await trustedCas();
    for (const c of b.clients()) {
      if (c.principal.kind !== 'certificate') continue;
      const record = await certificates.describe(c.principal.id).catch(() => undefined);
      if (record?.status !== 'ACTIVE') disconnectCertificate(c.principal.id, record?.status ?? 'DELETED');
    }
    await refresh();
  };

  function onCertificate(e: ChangeEvent, origin: ChangeOrigin) {
    if (e.kind === 'certificate') {
      if (origin === 'local' && e.autoRegisteredBy) {
        // Just-in-time registration event (AWS: $aws/events/certificates/registered/<caCertificateId>).
        const now = Date.now();
        b.publish({
          topic: `$aws/events/certificates/registered/${e.autoRegisteredBy}`,
          payload: Buffer.from(
            JSON.stringify({
              certificateId: e.certificateId,
              caCertificateId: e.autoRegisteredBy,
              timestamp: now,
              certificateStatus: e.status,
              awsAccountId: scope.accountId,
              certificateRegistrationTimestamp: now,
            }),
          ),
          qos: 0,
          retain: false,
        });
      }
      // Live revocation: within the same tick, not "within minutes" (reference §3.12).
      if (e.status !== 'ACTIVE') disconnectCertificate(e.certificateId, e.status);
      return undefined;
    }
    if (e.kind === 'ca') {
      if (e.status !== 'ACTIVE') {
        const n = b.disconnectWhere(
          (c) => c.principal.kind === 'certificate' && auth.caIdOf(c.principal) === e.certificateId,
          ADMINISTRATIVE_ACTION,
        );
        if (n)
          log.info({ caCertificateId: e.certificateId, disconnected: n }, 'CA certificate no longer active');
      }
      return trustedCas();
    }
    if (e.kind === 'resync') return resync();
    return undefined;
  }

  const subscriptions = [
    options.events.subscribe(['certificate', 'ca'], onCertificate),
    options.events.subscribe(['accessKey'], (e) => {
      if (e.kind !== 'accessKey' || !e.deleted) return;
      const n = b.disconnectWhere(
        (c) => c.principal.kind === 'accessKey' && c.principal.id === e.accessKeyId,
        ADMINISTRATIVE_ACTION,
      );
      if (n) log.info({ accessKeyId: e.accessKeyId, disconnected: n }, 'access key deleted');
    }),
    options.events.subscribe(['principal', 'membership', 'thing', 'thingGroup'], (e) => {
      const work =
        e.kind === 'principal'
          ? refresh({ thingName: e.thing, principal: e.principal })
          : e.kind === 'membership'
            ? refresh({ thingName: e.thing })
            : e.kind === 'thing'
              ? refresh({ thingName: e.name })
              : e.kind === 'thingGroup'
                ? // A dynamic group's membership may change for any thing.
                  refresh(e.dynamic ? undefined : { thingGroupName: e.name })
                : undefined; // resync: handled once, above
      return work?.catch((err: unknown) => log.warn({ err }, 'principal refresh failed'));
    }),
    options.policies.onChange(() => b.reauthorize()),
  ];
  void trustedCas();

  return {
    close() {
      for (const off of subscriptions) off();
    },
  };
}
