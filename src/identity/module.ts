import type { StartedContext } from '../api/index.js';
import type { ChangeChannel } from '../events/index.js';
import type { PolicyService } from '../policy/index.js';
import type { Database } from '../store/index.js';
import { certificateOperations } from './api.js';
import { createDeviceAuth, type DeviceAuth, type DeviceAuthOptions } from './auth-hooks.js';
import {
  openCertificateService,
  type ArnScopeLike,
  type CertificateAttachments,
  type CertificateService,
} from './certificates-service.js';
import type { SigningCa } from './certificates.js';
import { openCredentialStore, type CredentialStore } from './credentials.js';

/** What identity offers the other contexts (through the platform). */
export interface Identity {
  readonly certificates: CertificateService;
  /** Access keys for SigV4. */
  readonly credentials: CredentialStore;
  /** The broker's (and device HTTPS's) authentication and authorization hooks. */
  readonly auth: DeviceAuth;
}

/**
 * Start the identity context: device and CA certificates (with their operations), access keys and device
 * authentication. Live enforcement and device HTTPS need the broker and start after it
 * (`startEnforcement`, `startDeviceHttps`).
 */
export async function startIdentity(
  deps: Omit<DeviceAuthOptions, 'certificates' | 'accessKeys'> & {
    readonly db: Database;
    readonly dataDir: string;
    readonly ca: SigningCa;
    readonly scope: ArnScopeLike & DeviceAuthOptions['scope'];
    readonly events: ChangeChannel;
    readonly policies: PolicyService;
    readonly registrationCode: () => Promise<string | undefined>;
    readonly attachments: CertificateAttachments;
  },
): Promise<StartedContext<Identity>> {
  const { db, dataDir, ca, events, registrationCode, attachments, ...auth } = deps;
  const certificates = await openCertificateService({
    db,
    ca,
    scope: deps.scope,
    events,
    registrationCode,
    attachments,
  });
  const credentials = await openCredentialStore({ db, dataDir, events });
  const service = {
    certificates,
    credentials,
    auth: createDeviceAuth({ ...auth, certificates, accessKeys: credentials }),
  };
  return {
    name: 'identity',
    service,
    operations: certificateOperations(certificates),
    close: () => undefined,
  };
}
