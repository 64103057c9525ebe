import { afterAll, beforeAll, expect, test } from 'vitest';
import { signCsr } from '../../src/identity/index.js';
import { createApplier } from '../../src/provisioning/apply.js';
import { evaluateTemplate, parseTemplate } from '../../src/provisioning/template.js';
import type { AttemptTrace } from '../../src/provisioning/trace.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { makeCsr } from './provisioning-helpers.js';

/**
 * A CSR bulk line's result is part of its saga (issue 12): stored as a journaled write just before the
 * commit point, so a process that dies in the middle leaves the result recorded exactly when recovery keeps
 * the certificate, and a resumed task never signs that CSR a second time. The process "dies" here by an
 * apply that stops for good after a given step (nothing after it runs); a second applier, as a restarted
 * process, recovers the lapsed journal row on the same database.
 */
let platform: TestPlatform;

beforeAll(async () => {
  platform = await startTestPlatform();
  await platform.security.policies.createPolicy(
    'csr-crash',
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
    }),
  );
});
afterAll(() => platform.stop());

const template = parseTemplate(
  JSON.stringify({
    Parameters: { SerialNumber: { Type: 'String' }, CSR: { Type: 'String' } },
    Resources: {
      thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'SerialNumber' } } },
      certificate: {
        Type: 'AWS::IoT::Certificate',
        Properties: { CertificateSigningRequest: { Ref: 'CSR' }, Status: 'ACTIVE' },
      },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: 'csr-crash' } },
    },
  }),
);

function applier(stopAfter?: string) {
  return createApplier({
    ports: {
      registry: platform.registry,
      certificates: platform.security.certificates,
      policies: platform.security.policies,
    },
    store: platform.provisioning.store,
    leaseMs: 50,
    spendToken: async () => undefined,
    releaseToken: async () => undefined,
    // The platform CA, as the provisioning module signs with.
    signCsr: (csr) => signCsr({ certPem: platform.tls.caPem, keyPem: platform.tls.caKeyPem ?? '' }, csr),
    // The process dies right after this step: the apply never goes on.
    afterStep: (step) => (step === stopAfter ? new Promise<void>(() => undefined) : undefined),
  });
}

const trace = (attemptId: string): AttemptTrace => ({
  attemptId,
  step: () => undefined,
  note: () => undefined,
  finish: () => {
    throw new Error('not finished in this test');
  },
});

async function cutLine(name: string, taskId: string, stopAfter: string) {
  if (!template.ok) throw new Error('template');
  const { csr } = await makeCsr(name);
  const evaluated = evaluateTemplate(template.template, {
    parameters: { SerialNumber: name, CSR: csr },
    templateType: 'FLEET_PROVISIONING',
  });
  if (!evaluated.ok) throw new Error(evaluated.error.message);
  const stepsSeen: string[] = [];
  void applier(stopAfter).apply({
    plan: evaluated.plan,
    flow: `bulk:${taskId}`,
    trace: { ...trace(`attempt-${name}`), step: (s) => void stepsSeen.push(s) },
    result: { taskId, line: 1, body: (a) => JSON.stringify({ referenceId: '1', response: a }) },
  });
  for (let i = 0; i < 200 && !stepsSeen.includes(stopAfter); i++) await new Promise((r) => setTimeout(r, 10));
  expect(stepsSeen).toContain(stopAfter);
  await new Promise((r) => setTimeout(r, 120)); // the lease (50 ms) lapses
  return applier().recover();
}

const certificatesOf = async (thingName: string) =>
  (await platform.registry.listThingPrincipals({ thingName })).principals ?? [];

test('cut after the commit point: rolled forward, the result stays, so the line is not signed again', async () => {
  const r = await cutLine('csr-kept', 'task-kept', 'apply.certificate.status');
  expect(r).toEqual({ rolledBack: 0, rolledForward: 1 });
  expect([...(await platform.provisioning.store.doneTaskLines('task-kept'))]).toEqual([1]);
  const [line] = await platform.provisioning.store.taskLines('task-kept', { ok: true, after: 0, limit: 10 });
  const body = JSON.parse(line!.body) as { response: { certificateId: string } };
  expect((await platform.security.certificates.describe(body.response.certificateId)).status).toBe('ACTIVE');
  expect(await certificatesOf('csr-kept')).toHaveLength(1);
  expect(await platform.provisioning.store.journalIds()).toEqual([]);
});

test('cut after the result but before the commit point: rolled back, the result goes with the rest', async () => {
  const r = await cutLine('csr-undone', 'task-undone', 'apply.result');
  expect(r).toEqual({ rolledBack: 1, rolledForward: 0 });
  expect((await platform.provisioning.store.doneTaskLines('task-undone')).size).toBe(0);
  expect(await platform.registry.store.getThing('csr-undone')).toBeUndefined();
  expect(await platform.provisioning.store.journalIds()).toEqual([]);
});
