import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  CreateBillingGroupCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  AddThingToThingGroupCommand,
  DescribeThingCommand,
  ListPoliciesCommand,
  ListThingGroupsForThingCommand,
  RegisterThingCommand,
} from '@aws-sdk/client-iot';
import { provisioningPlatform, type ProvisioningHarness } from './provisioning-helpers.js';

/**
 * How a plan is applied to a thing that already exists (OverrideSettings: DO_NOTHING by default, MERGE,
 * REPLACE, FAIL), a thing type and billing group, a PolicyDocument policy shared by every device given the
 * same document, and a refusal in the checks that writes nothing (RegisterThing over the SDK).
 */
let h: ProvisioningHarness;

beforeAll(async () => {
  h = await provisioningPlatform();
  for (const g of ['old-line', 'new-line'])
    await h.iot.send(new CreateThingGroupCommand({ thingGroupName: g }));
  await h.iot.send(new CreateBillingGroupCommand({ billingGroupName: 'plant-2' }));
  await h.iot.send(new CreateThingTypeCommand({ thingTypeName: 'sensor' }));
  await h.iot.send(
    new CreateThingCommand({
      thingName: 'existing',
      attributePayload: { attributes: { color: 'red', size: 'L' } },
    }),
  );
  await h.iot.send(new AddThingToThingGroupCommand({ thingName: 'existing', thingGroupName: 'old-line' }));
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
});

const template = (overrides: Record<string, string>, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: {
          ThingName: 'existing',
          AttributePayload: { color: 'blue', serial: 'E1' },
          ThingGroups: ['new-line'],
          ...extra,
        },
        OverrideSettings: overrides,
      },
    },
  });

const groupsOf = async (thingName: string) =>
  ((await h.iot.send(new ListThingGroupsForThingCommand({ thingName }))).thingGroups ?? []).map(
    (g) => g.groupName,
  );

test('an existing thing: DO_NOTHING keeps it, FAIL refuses with nothing written, MERGE and REPLACE change it', async () => {
  await h.iot.send(new RegisterThingCommand({ templateBody: template({}) }));
  let t = await h.iot.send(new DescribeThingCommand({ thingName: 'existing' }));
  expect(t.attributes).toEqual({ color: 'red', size: 'L' });
  expect(await groupsOf('existing')).toEqual(['old-line']);

  await expect(
    h.iot.send(
      new RegisterThingCommand({
        templateBody: template({ AttributePayload: 'FAIL', ThingGroups: 'MERGE' }),
      }),
    ),
  ).rejects.toMatchObject({
    name: 'ResourceRegistrationFailureException',
    message: expect.stringContaining('OverrideSettings AttributePayload is FAIL'),
  });
  expect(await groupsOf('existing')).toEqual(['old-line']);

  await h.iot.send(
    new RegisterThingCommand({ templateBody: template({ AttributePayload: 'MERGE', ThingGroups: 'MERGE' }) }),
  );
  t = await h.iot.send(new DescribeThingCommand({ thingName: 'existing' }));
  expect(t.attributes).toEqual({ color: 'blue', size: 'L', serial: 'E1' });
  expect((await groupsOf('existing')).sort()).toEqual(['new-line', 'old-line']);

  await h.iot.send(
    new RegisterThingCommand({
      templateBody: template(
        { AttributePayload: 'REPLACE', ThingGroups: 'REPLACE', ThingTypeName: 'REPLACE' },
        { ThingTypeName: 'sensor', BillingGroup: 'plant-2' },
      ),
    }),
  );
  t = await h.iot.send(new DescribeThingCommand({ thingName: 'existing' }));
  expect(t.attributes).toEqual({ color: 'blue', serial: 'E1' });
  expect(t.thingTypeName).toBe('sensor');
  expect(t.billingGroupName).toBe('plant-2');
  expect(await groupsOf('existing')).toEqual(['new-line']);
}, 60_000);

test('a missing thing group is refused before anything is written; a PolicyDocument policy is made once', async () => {
  await expect(
    h.iot.send(
      new RegisterThingCommand({
        templateBody: JSON.stringify({
          Resources: {
            thing: {
              Type: 'AWS::IoT::Thing',
              Properties: { ThingName: 'fresh', ThingGroups: ['no-such-group'] },
            },
          },
        }),
      }),
    ),
  ).rejects.toMatchObject({ message: expect.stringContaining('no-such-group') });
  await expect(h.iot.send(new DescribeThingCommand({ thingName: 'fresh' }))).rejects.toThrow(
    /cannot be found/,
  );

  const document = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
  });
  const withPolicy = (thingName: string) =>
    JSON.stringify({
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: thingName } },
        policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyDocument: document } },
      },
    });
  const before = (await h.iot.send(new ListPoliciesCommand({}))).policies?.length ?? 0;
  const a = await h.iot.send(new RegisterThingCommand({ templateBody: withPolicy('doc-a') }));
  const b = await h.iot.send(new RegisterThingCommand({ templateBody: withPolicy('doc-b') }));
  expect(a.resourceArns?.policy).toBe(b.resourceArns?.policy);
  expect(a.resourceArns?.policy).toMatch(/policy\/[0-9a-f]{64}$/);
  expect((await h.iot.send(new ListPoliciesCommand({}))).policies).toHaveLength(before + 1);
}, 60_000);
