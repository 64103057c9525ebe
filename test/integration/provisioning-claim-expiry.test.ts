import { CreateProvisioningClaimCommand, DescribeCertificateCommand } from '@aws-sdk/client-iot';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { waitFor } from '../helpers/platform.js';
import {
  devicePolicy,
  fleetTemplate,
  provisioningPlatform,
  type ProvisioningHarness,
} from './provisioning-helpers.js';

// A claim certificate (CreateProvisioningClaim, reference §3.6) is valid for provisioning.claimTtlMs (AWS:
// five minutes); once that passes, the sweep makes it INACTIVE (issue 12), so a leaked claim stops
// working, and a fresh one is left alone.

let h: ProvisioningHarness;
const CLAIM_TTL_MS = 1000;

beforeAll(async () => {
  h = await provisioningPlatform({ provisioning: { claimTtlMs: CLAIM_TTL_MS, sweepIntervalMs: 3_600_000 } });
  const { region, accountId } = h.platform.config;
  await h.policy('device-policy', devicePolicy(region, accountId));
  await h.template('fleet', fleetTemplate('device-policy'));
});
afterAll(async () => {
  h?.iot.destroy();
  await h?.platform.stop();
});

const status = async (certificateId: string) =>
  (await h.iot.send(new DescribeCertificateCommand({ certificateId }))).certificateDescription?.status;

test('an expired claim certificate is made INACTIVE by the sweep, once', async () => {
  const claim = await h.iot.send(new CreateProvisioningClaimCommand({ templateName: 'fleet' }));
  const id = claim.certificateId!;
  // Before its expiry the sweep leaves it ACTIVE.
  expect((await h.platform.provisioning.sweep()).claimsDeactivated).toBe(0);
  expect(await status(id)).toBe('ACTIVE');

  let deactivated = 0;
  await waitFor(
    async () => {
      deactivated += (await h.platform.provisioning.sweep()).claimsDeactivated;
      return deactivated > 0;
    },
    CLAIM_TTL_MS * 10,
    'the sweep to deactivate the expired claim',
  );
  expect(deactivated).toBe(1);
  expect(await status(id)).toBe('INACTIVE');
  // Done once: the next sweep has nothing left to do.
  expect((await h.platform.provisioning.sweep()).claimsDeactivated).toBe(0);
}, 30_000);
