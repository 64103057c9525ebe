import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DescribeCertificateCommand, DescribeThingCommand } from '@aws-sdk/client-iot';
import { allowAllDevice, scrapeMetric, waitFor } from '../helpers/platform.js';
import {
  claimDevice,
  devicePolicy,
  fleetTemplate,
  provisioningPlatform,
  type ProvisioningHarness,
} from './provisioning-helpers.js';

/**
 * Every refusal of MQTT fleet provisioning gets AWS's rejected payload ({statusCode, errorCode,
 * errorMessage}, reference §8.4) and a trace that names the cause (GET /provisioning/traces), and leaves
 * nothing behind: an unknown template, a hook that says no, a hook that times out, a parameter that breaks
 * its constraint, a Condition that excludes the thing, a reused token, an expired token (whose certificate
 * the sweep then removes).
 */
let h: ProvisioningHarness;
let hook: Server;
let hookUrl: string;
const hookRequests: any[] = [];
let hookMode: 'allow' | 'deny' | 'hang' = 'allow';

const TOKEN_TTL_MS = 4000;

beforeAll(async () => {
  hook = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hookRequests.push(JSON.parse(body));
      if (hookMode === 'hang') return; // never answers
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          hookMode === 'allow'
            ? { allowProvisioning: true, parameterOverrides: { SerialNumber: 'FROM-HOOK' } }
            : { allowProvisioning: false },
        ),
      );
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/allow`;

  h = await provisioningPlatform({
    provisioning: { tokenTtlMs: TOKEN_TTL_MS, hookTimeoutMs: 1000, sweepIntervalMs: 3_600_000 },
  });
  const { region, accountId } = h.platform.config;
  await h.policy('device-policy', devicePolicy(region, accountId));
  await h.template('fleet', fleetTemplate('device-policy'));
  await h.template('hooked', fleetTemplate('device-policy'), {
    preProvisioningHook: { targetArn: hookUrl, payloadVersion: '2020-04-01' },
  });
  const strict = fleetTemplate('device-policy', {
    Parameters: {
      SerialNumber: { Type: 'String', AllowedPattern: '^SN-[0-9]{4}$' },
      Region: { Type: 'String', Default: 'eu' },
      'AWS::IoT::Certificate::Id': { Type: 'String' },
    },
    Conditions: { InEurope: { 'Fn::Equals': [{ Ref: 'Region' }, 'eu'] } },
  });
  (strict.Resources.thing as Record<string, unknown>).Condition = 'InEurope';
  await h.template('strict', strict);
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
  await new Promise((r) => hook?.close(r));
});

/** The newest trace of a template with that result. */
async function lastTrace(templateName: string, result: 'accepted' | 'rejected') {
  const { traces } = await h.api('GET', '/provisioning/traces', {
    query: { templateName, result, maxResults: 1 },
  });
  return traces[0];
}

test('an unknown template: 404 ResourceNotFound, traced', async () => {
  const dev = await allowAllDevice(h.platform, 'allow-all');
  const d = await claimDevice(h, 'fleet', 'probe-unknown', { cert: dev.cert, key: dev.key });
  try {
    const cert = await d.certificate();
    const r = await d.register(cert.certificateOwnershipToken, { SerialNumber: 'U1' }, 'no-such-template');
    expect(r.accepted).toBe(false);
    expect(r.body).toEqual({
      statusCode: 404,
      errorCode: 'ResourceNotFound',
      errorMessage: expect.stringContaining('no-such-template does not exist'),
    });
    const t = await lastTrace('no-such-template', 'rejected');
    expect(t).toMatchObject({
      flow: 'mqtt',
      reason: 'template_not_found',
      certificateId: cert.certificateId,
    });
    // The token was not spent by the refusal: it still registers with the right template.
    const ok = await d.register(cert.certificateOwnershipToken, { SerialNumber: 'U1' }, 'fleet');
    expect(ok).toMatchObject({ accepted: true, body: { thingName: 'dev-U1' } });
  } finally {
    await d.client.endAsync();
  }
}, 60_000);

test('the hook: AWS request shape, overrides applied; "no" and a timeout are AccessDenied, traced', async () => {
  const d = await claimDevice(h, 'hooked', 'probe-hook');
  try {
    hookMode = 'allow';
    const c1 = await d.certificate();
    const ok = await d.register(c1.certificateOwnershipToken, { SerialNumber: 'H1' });
    expect(ok).toMatchObject({ accepted: true, body: { thingName: 'dev-FROM-HOOK' } });
    expect(hookRequests.at(-1)).toEqual({
      claimCertificateId: d.claimCertificateId,
      certificateId: c1.certificateId,
      certificatePem: expect.stringContaining('BEGIN CERTIFICATE'),
      templateArn: h.arn('provisioningtemplate', 'hooked'),
      clientId: 'probe-hook',
      parameters: { SerialNumber: 'H1' },
    });

    hookMode = 'deny';
    const c2 = await d.certificate();
    const no = await d.register(c2.certificateOwnershipToken, { SerialNumber: 'H2' });
    expect(no.body).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
    expect(no.body.errorMessage).toContain('allowProvisioning is false');
    expect(await lastTrace('hooked', 'rejected')).toMatchObject({ reason: 'hook_denied' });

    hookMode = 'hang';
    const c3 = await d.certificate();
    const slow = await d.register(c3.certificateOwnershipToken, { SerialNumber: 'H3' });
    expect(slow.body).toMatchObject({ statusCode: 403, errorCode: 'AccessDenied' });
    expect(slow.body.errorMessage).toContain('no answer within 1000 ms');
    const t = await lastTrace('hooked', 'rejected');
    expect(t.reason).toBe('hook_timeout');
    expect(t.steps.map((s: any) => s.step)).toEqual([
      'token',
      'template',
      'hook.request',
      'hook.answer',
      'refused',
    ]);
    // Nothing was made for the refused ones.
    for (const thingName of ['dev-H2', 'dev-H3'])
      await expect(h.iot.send(new DescribeThingCommand({ thingName }))).rejects.toThrow(/cannot be found/);
    const pending = await h.iot.send(new DescribeCertificateCommand({ certificateId: c3.certificateId }));
    expect(pending.certificateDescription?.status).toBe('PENDING_ACTIVATION');
  } finally {
    hookMode = 'allow';
    await d.client.endAsync();
  }
}, 60_000);

test('a parameter breaking its AllowedPattern, and a Condition that excludes the thing: 400, traced', async () => {
  const d = await claimDevice(h, 'strict', 'probe-strict');
  try {
    const c1 = await d.certificate();
    const bad = await d.register(c1.certificateOwnershipToken, { SerialNumber: 'nope' });
    expect(bad.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidParameters' });
    expect(bad.body.errorMessage).toContain('SerialNumber');
    expect(await lastTrace('strict', 'rejected')).toMatchObject({ reason: 'parameters' });

    const excluded = await d.register(c1.certificateOwnershipToken, {
      SerialNumber: 'SN-0001',
      Region: 'us',
    });
    expect(excluded.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidParameters' });
    expect(excluded.body.errorMessage).toContain('ConditionFailed');
    expect(await lastTrace('strict', 'rejected')).toMatchObject({ reason: 'parameters' });
    const c2 = await d.certificate();
    const good = await d.register(c2.certificateOwnershipToken, { SerialNumber: 'SN-0002' });
    expect(good).toMatchObject({ accepted: true, body: { thingName: 'dev-SN-0002' } });
  } finally {
    await d.client.endAsync();
  }
}, 60_000);

test('a reused token and an expired token: InvalidCertificateOwnershipToken; the sweep removes the unused certificate', async () => {
  const d = await claimDevice(h, 'fleet', 'probe-token');
  try {
    const c1 = await d.certificate();
    expect((await d.register(c1.certificateOwnershipToken, { SerialNumber: 'T1' })).accepted).toBe(true);
    const reused = await d.register(c1.certificateOwnershipToken, { SerialNumber: 'T1' });
    expect(reused.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
    expect(reused.body.errorMessage).toContain('already used');
    expect(await lastTrace('fleet', 'rejected')).toMatchObject({ reason: 'token_used' });

    const c2 = await d.certificate();
    await new Promise((r) => setTimeout(r, TOKEN_TTL_MS + 200));
    const expired = await d.register(c2.certificateOwnershipToken, { SerialNumber: 'T2' });
    expect(expired.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken' });
    expect(expired.body.errorMessage).toContain('expired');
    expect(await lastTrace('fleet', 'rejected')).toMatchObject({ reason: 'token_expired' });

    const report = await h.platform.provisioning.sweep();
    expect(report.certificatesRemoved).toBeGreaterThanOrEqual(1);
    await expect(
      h.iot.send(new DescribeCertificateCommand({ certificateId: c2.certificateId })),
    ).rejects.toThrow();
    // The used one stays.
    const kept = await h.iot.send(new DescribeCertificateCommand({ certificateId: c1.certificateId }));
    expect(kept.certificateDescription?.status).toBe('ACTIVE');
    const after = await d.register(c2.certificateOwnershipToken, { SerialNumber: 'T2' });
    expect(after.body).toMatchObject({ errorCode: 'InvalidCertificateOwnershipToken' });
  } finally {
    await d.client.endAsync();
  }
}, 60_000);

test('a malformed request: 400 InvalidRequest, and the attempts metric counts every refusal by reason', async () => {
  const d = await claimDevice(h, 'fleet', 'probe-payload');
  try {
    const r = await d.request('$aws/provisioning-templates/fleet/provision/json', { parameters: { a: 1 } });
    expect(r.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidRequest' });
    await waitFor(
      async () =>
        (await scrapeMetric(h.platform, 'thingstead_provisioning_attempts_total', /reason="token_used"/)) >=
        1,
      5000,
      'attempts metric',
    );
    expect(
      await scrapeMetric(h.platform, 'thingstead_provisioning_attempts_total', /reason="payload_invalid"/),
    ).toBeGreaterThanOrEqual(1);
  } finally {
    await d.client.endAsync();
  }
}, 30_000);

test('an over-deep JSON request gets the rejected reply naming the depth limit, and the service keeps answering', async () => {
  const d = await claimDevice(h, 'fleet', 'probe-deep');
  try {
    // 100 levels against limits.maxJsonDepth (64): refused by the bounded parser, never built.
    let deep: unknown = 'x';
    for (let i = 0; i < 100; i++) deep = { a: deep };
    for (const topic of [
      '$aws/provisioning-templates/fleet/provision/json',
      '$aws/certificates/create/json',
    ]) {
      const r = await d.request(topic, { parameters: deep, certificateOwnershipToken: 't' });
      expect(r.accepted).toBe(false);
      expect(r.body).toMatchObject({ statusCode: 400, errorCode: 'InvalidRequest' });
      expect(r.body.errorMessage).toContain(
        'The request payload exceeds the maximum JSON nesting depth of 64 (limits.maxJsonDepth).',
      );
    }
    // Not a crash: the same service answers the next request.
    const ok = await d.request('$aws/certificates/create/json', {});
    expect(ok.accepted).toBe(true);
  } finally {
    await d.client.endAsync();
  }
}, 30_000);

test("a template that points the device's registration at another certificate is refused", async () => {
  const sneaky = fleetTemplate('device-policy');
  (sneaky.Parameters as Record<string, unknown>).Target = { Type: 'String' };
  (sneaky.Resources.certificate.Properties as Record<string, unknown>).CertificateId = { Ref: 'Target' };
  await h.template('sneaky', sneaky);
  const d = await claimDevice(h, 'sneaky', 'probe-sneaky');
  try {
    const victim = await d.certificate();
    const mine = await d.certificate();
    const r = await d.register(mine.certificateOwnershipToken, {
      SerialNumber: 'S1',
      Target: victim.certificateId,
    });
    expect(r.accepted).toBe(false);
    expect(r.body.errorMessage).toContain('must be the certificate of this request');
    expect(await lastTrace('sneaky', 'rejected')).toMatchObject({ reason: 'certificate_mismatch' });
    const v = await h.iot.send(new DescribeCertificateCommand({ certificateId: victim.certificateId }));
    expect(v.certificateDescription?.status).toBe('PENDING_ACTIVATION');
  } finally {
    await d.client.endAsync();
  }
}, 60_000);
