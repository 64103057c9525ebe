import type { ChangeChannel } from '../events/index.js';
import { certificateInfo, type CertificateService } from '../identity/index.js';
import type { Logger, Registry } from '../observability/index.js';
import { WorkQueue } from '../work/index.js';
import type { Pipeline } from './pipeline.js';
import type { CertificateFacts } from './template.js';

/**
 * Just-in-time provisioning (AWS IoT Developer Guide, "Just-in-time provisioning"): a CA registered with
 * `allowAutoRegistration` and a `registrationConfig` ({templateBody, roleArn} or {templateName}) provisions
 * a device the first time it connects with a certificate that CA issued.
 *
 * Where it meets the connection path: identity's certificate check registers such a certificate as
 * PENDING_ACTIVATION (and refuses that first connection, as AWS does), then publishes a `certificate` change
 * event with `autoRegisteredBy`. That event still makes the JITR message on
 * `$aws/events/certificates/registered/{caCertificateId}` (identity's live enforcement); here the process
 * that registered it (origin `local`, so once per cluster) queues a JITP run of the pipeline with the
 * certificate's facts (subject fields become the AWS::IoT::Certificate::* parameters). The template's
 * certificate Status (ACTIVE) is the commit point; the device's next connection succeeds. A CA without a
 * registrationConfig keeps JITR only. The queue is bounded; a refused run is counted and traced.
 */

const SUBJECT_FIELDS: Readonly<Record<string, string>> = {
  CommonName: 'CommonName',
  Country: 'Country',
  Organization: 'Organization',
  OrganizationalUnit: 'OrganizationalUnit',
  DistinguishedNameQualifier: 'DistinguishedNameQualifier',
  State: 'StateName',
  SerialNumber: 'SerialNumber',
  Locality: 'Locality',
  Title: 'Title',
  Surname: 'Surname',
  GivenName: 'GivenName',
  Initials: 'Initials',
  Pseudonym: 'Pseudonym',
  GenerationQualifier: 'GenerationQualifier',
};

/** A certificate's facts for the template and the hook. */
export async function certificateFacts(
  certificates: Pick<CertificateService, 'describe'>,
  certificateId: string,
  withSubject: boolean,
): Promise<CertificateFacts> {
  const record = await certificates.describe(certificateId);
  const facts: CertificateFacts = {
    certificateId: record.certificateId,
    certificatePem: record.certificatePem,
    ...(record.caCertificateId ? { caCertificateId: record.caCertificateId } : {}),
  };
  if (!withSubject) return facts;
  const info = certificateInfo(record.certificatePem);
  const subject: Record<string, string> = {};
  for (const [field, name] of Object.entries(SUBJECT_FIELDS)) {
    const v = info.subject[field]?.[0];
    if (v !== undefined) subject[name] = v;
  }
  return {
    ...facts,
    subject,
    subjectAlternativeNames: Object.values(info.subjectAltNames).flat(),
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
  };
}

export function startJitp(options: {
  events: ChangeChannel;
  certificates: Pick<CertificateService, 'describe' | 'describeCa'>;
  pipeline: Pipeline;
  logger: Logger;
  metrics?: Registry | undefined;
  maxQueued: number;
}): { close(): Promise<void> } {
  const { certificates, pipeline, logger } = options;
  const queue = new WorkQueue<{ certificateId: string; caCertificateId: string }>({
    name: 'provisioning.jitp',
    maxItems: options.maxQueued,
    concurrency: 4,
    logger,
    metrics: options.metrics,
    async handle({ certificateId, caCertificateId }) {
      const ca = await certificates.describeCa(caCertificateId).catch(() => undefined);
      const config = ca?.registrationConfig;
      if (!config) return; // JITR only
      const templateName = typeof config.templateName === 'string' ? config.templateName : undefined;
      const templateBody = typeof config.templateBody === 'string' ? config.templateBody : undefined;
      if (templateName === undefined && templateBody === undefined) return;
      const outcome = await pipeline.provision({
        flow: 'jitp',
        template: templateName !== undefined ? { name: templateName } : { body: templateBody! },
        templateType: 'JITP',
        parameters: {},
        certificate: await certificateFacts(certificates, certificateId, true),
      });
      if (!outcome.ok)
        logger.info(
          { certificateId, caCertificateId, reason: outcome.refusal.reason, attemptId: outcome.attemptId },
          `just-in-time provisioning refused: ${outcome.refusal.error.message}`,
        );
    },
    onDrop: (item, reason) =>
      logger.warn(
        { ...item, reason },
        'just-in-time provisioning not queued (queue full); the device stays PENDING_ACTIVATION',
      ),
  });
  const unsubscribe = options.events.subscribe(['certificate'], (e, origin) => {
    if (e.kind !== 'certificate' || origin !== 'local' || !e.autoRegisteredBy) return;
    queue.push({ certificateId: e.certificateId, caCertificateId: e.autoRegisteredBy });
  });
  return {
    async close() {
      unsubscribe();
      await queue.close();
    },
  };
}
