import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateProvisioningTemplateCommand,
  CreateProvisioningTemplateVersionCommand,
  DeleteProvisioningTemplateCommand,
  DeleteProvisioningTemplateVersionCommand,
  DescribeProvisioningTemplateCommand,
  DescribeProvisioningTemplateVersionCommand,
  IoTClient,
  ListProvisioningTemplateVersionsCommand,
  ListProvisioningTemplatesCommand,
  ListTagsForResourceCommand,
  paginateListProvisioningTemplates,
  UpdateProvisioningTemplateCommand,
  type CreateProvisioningTemplateCommandInput,
} from '@aws-sdk/client-iot';
import { freshPgSchema, postgresUrl } from '../compat/harness.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { AWS, awsEnv, awsTools, run } from '../helpers/tools.js';

/**
 * The provisioning template control plane (reference §3.6; routes and members from the @aws-sdk/client-iot
 * model) with the real SDK and, once, the AWS CLI: the whole lifecycle of templates and versions, AWS's
 * errors (ResourceNotFound, ResourceAlreadyExists, VersionsLimitExceeded, DeleteConflict, InvalidRequest
 * naming the place in the template), on SQLite and on PostgreSQL.
 */
const { haveAws } = await awsTools('the provisioning templates AWS CLI check');
const pg = await postgresUrl();
const engines = [['sqlite', null] as const, ...(pg ? [['postgres', pg] as const] : [])];
if (!pg)
  console.warn(
    'SKIPPING: PostgreSQL is not reachable; the PostgreSQL run of the template lifecycle is skipped',
  );

const ROLE = 'arn:aws:iam::123456789012:role/Provisioning';
const fleetBody = (prefix: string) =>
  JSON.stringify({
    Parameters: { SerialNumber: { Type: 'String' }, 'AWS::IoT::Certificate::Id': { Type: 'String' } },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: { ThingName: { 'Fn::Join': ['', [prefix, { Ref: 'SerialNumber' }]] } },
        OverrideSettings: { AttributePayload: 'MERGE' },
      },
      certificate: {
        Type: 'AWS::IoT::Certificate',
        Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'Active' },
      },
    },
  });

async function rejects(
  p: Promise<unknown>,
): Promise<{ name: string; message: string; status?: number } & Record<string, any>> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return Object.assign(e, { status: e.$metadata?.httpStatusCode });
  }
  throw new Error('expected the call to fail');
}

describe.each(engines)('provisioning templates on %s', (_kind, pgUrl) => {
  let platform: TestPlatform;
  let iot: IoTClient;
  let dropSchema: (() => Promise<void>) | undefined;
  const create = (input: Partial<CreateProvisioningTemplateCommandInput> & { templateName: string }) =>
    iot.send(
      new CreateProvisioningTemplateCommand({
        templateBody: fleetBody('dev-'),
        provisioningRoleArn: ROLE,
        ...input,
      }),
    );

  beforeAll(async () => {
    let databaseUrl: string | undefined;
    if (pgUrl) {
      const schema = await freshPgSchema(pgUrl);
      databaseUrl = schema.url;
      dropSchema = () => schema.drop();
    }
    platform = await startTestPlatform(databaseUrl ? { databaseUrl } : {});
    const key = await platform.credentials.create(`tpl-${Date.now()}`, 'admin');
    iot = new IoTClient({
      endpoint: platform.endpoints.http,
      region: platform.config.region,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    await platform?.stop();
    await dropSchema?.();
  });

  it('creates, describes, updates and deletes a template', async () => {
    const arn = `arn:aws:iot:${platform.config.region}:${platform.config.accountId}:provisioningtemplate/life`;
    const created = await create({
      templateName: 'life',
      description: 'factory line 1',
      tags: [{ Key: 'line', Value: '1' }],
    });
    expect(created).toMatchObject({ templateArn: arn, templateName: 'life', defaultVersionId: 1 });

    const d = await iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'life' }));
    expect(d).toMatchObject({
      templateArn: arn,
      templateName: 'life',
      description: 'factory line 1',
      defaultVersionId: 1,
      templateBody: fleetBody('dev-'),
      // AWS: a template is created disabled unless enabled is true.
      enabled: false,
      provisioningRoleArn: ROLE,
      type: 'FLEET_PROVISIONING',
    });
    expect(d.creationDate).toBeInstanceOf(Date);
    expect(Math.abs(d.creationDate!.getTime() - Date.now())).toBeLessThan(60_000);
    expect(d.preProvisioningHook).toBeUndefined();
    expect((await iot.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags).toEqual([
      { Key: 'line', Value: '1' },
    ]);

    await iot.send(
      new UpdateProvisioningTemplateCommand({
        templateName: 'life',
        description: 'line 2',
        enabled: true,
        provisioningRoleArn: 'arn:aws:iam::123456789012:role/Other',
        preProvisioningHook: { targetArn: 'https://hooks.example.com/allow', payloadVersion: '2020-04-01' },
      }),
    );
    const u = await iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'life' }));
    expect(u).toMatchObject({
      description: 'line 2',
      enabled: true,
      provisioningRoleArn: 'arn:aws:iam::123456789012:role/Other',
      preProvisioningHook: { targetArn: 'https://hooks.example.com/allow', payloadVersion: '2020-04-01' },
    });
    expect(u.lastModifiedDate!.getTime()).toBeGreaterThanOrEqual(u.creationDate!.getTime());
    expect(platform.provisioning.templates).toBeDefined();

    await iot.send(
      new UpdateProvisioningTemplateCommand({ templateName: 'life', removePreProvisioningHook: true }),
    );
    expect(
      (await iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'life' }))).preProvisioningHook,
    ).toBeUndefined();

    await iot.send(new DeleteProvisioningTemplateCommand({ templateName: 'life' }));
    const gone = await rejects(iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'life' })));
    expect(gone).toMatchObject({ name: 'ResourceNotFoundException', status: 404 });
    expect(gone.message).toBe('The provisioning template life does not exist');
    await expect(iot.send(new ListTagsForResourceCommand({ resourceArn: arn }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    for (const cmd of [
      new DeleteProvisioningTemplateCommand({ templateName: 'life' }),
      new UpdateProvisioningTemplateCommand({ templateName: 'life', enabled: true }),
      new ListProvisioningTemplateVersionsCommand({ templateName: 'life' }),
    ]) {
      expect(await rejects(iot.send(cmd as never))).toMatchObject({ name: 'ResourceNotFoundException' });
    }
  });

  it('versions: create, set as default, list, describe, delete; the default and the sixth are refused', async () => {
    await create({ templateName: 'ver', enabled: true });
    const v2 = await iot.send(
      new CreateProvisioningTemplateVersionCommand({ templateName: 'ver', templateBody: fleetBody('v2-') }),
    );
    expect(v2).toMatchObject({ templateName: 'ver', versionId: 2, isDefaultVersion: false });
    const v3 = await iot.send(
      new CreateProvisioningTemplateVersionCommand({
        templateName: 'ver',
        templateBody: fleetBody('v3-'),
        setAsDefault: true,
      }),
    );
    expect(v3).toMatchObject({ versionId: 3, isDefaultVersion: true });
    const d = await iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'ver' }));
    expect(d).toMatchObject({ defaultVersionId: 3, templateBody: fleetBody('v3-') });
    // The flows read the default version, parsed.
    const stored = await platform.provisioning.templates.exists('ver');
    expect(stored).toBe(true);

    const dv = await iot.send(
      new DescribeProvisioningTemplateVersionCommand({ templateName: 'ver', versionId: 2 }),
    );
    expect(dv).toMatchObject({ versionId: 2, isDefaultVersion: false, templateBody: fleetBody('v2-') });
    expect(dv.creationDate).toBeInstanceOf(Date);

    const del = await rejects(
      iot.send(new DeleteProvisioningTemplateVersionCommand({ templateName: 'ver', versionId: 3 })),
    );
    expect(del).toMatchObject({ name: 'DeleteConflictException', status: 409 });
    expect(del.message).toMatch(/Version 3 is the default version of the provisioning template ver/);

    await iot.send(
      new CreateProvisioningTemplateVersionCommand({ templateName: 'ver', templateBody: fleetBody('v4-') }),
    );
    await iot.send(
      new CreateProvisioningTemplateVersionCommand({ templateName: 'ver', templateBody: fleetBody('v5-') }),
    );
    const sixth = await rejects(
      iot.send(
        new CreateProvisioningTemplateVersionCommand({ templateName: 'ver', templateBody: fleetBody('v6-') }),
      ),
    );
    expect(sixth).toMatchObject({ name: 'VersionsLimitExceededException', status: 409 });
    expect(sixth.message).toMatch(
      /already has 5 versions; delete one \(DeleteProvisioningTemplateVersion\) first/,
    );

    await iot.send(new DeleteProvisioningTemplateVersionCommand({ templateName: 'ver', versionId: 1 }));
    const page1 = await iot.send(
      new ListProvisioningTemplateVersionsCommand({ templateName: 'ver', maxResults: 3 }),
    );
    expect(page1.versions!.map((v) => [v.versionId, v.isDefaultVersion])).toEqual([
      [2, false],
      [3, true],
      [4, false],
    ]);
    const page2 = await iot.send(
      new ListProvisioningTemplateVersionsCommand({
        templateName: 'ver',
        maxResults: 3,
        nextToken: page1.nextToken,
      }),
    );
    expect(page2.versions!.map((v) => v.versionId)).toEqual([5]);
    expect(page2.nextToken).toBeUndefined();
    // A deleted version id is not given out again.
    const v6 = await iot.send(
      new CreateProvisioningTemplateVersionCommand({ templateName: 'ver', templateBody: fleetBody('v6-') }),
    );
    expect(v6.versionId).toBe(6);

    await iot.send(new UpdateProvisioningTemplateCommand({ templateName: 'ver', defaultVersionId: 6 }));
    expect(
      (await iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'ver' }))).templateBody,
    ).toBe(fleetBody('v6-'));
    const noVersion = await rejects(
      iot.send(new UpdateProvisioningTemplateCommand({ templateName: 'ver', defaultVersionId: 1 })),
    );
    expect(noVersion).toMatchObject({ name: 'ResourceNotFoundException' });
    expect(noVersion.message).toBe('The provisioning template ver has no version 1');
    expect(
      await rejects(
        iot.send(new DescribeProvisioningTemplateVersionCommand({ templateName: 'ver', versionId: 99 })),
      ),
    ).toMatchObject({ name: 'ResourceNotFoundException' });
    expect(
      await rejects(
        iot.send(new DeleteProvisioningTemplateVersionCommand({ templateName: 'ver', versionId: 99 })),
      ),
    ).toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('lists templates in pages (the SDK paginator walks them all)', async () => {
    const names = ['pg-a', 'pg-b', 'pg-c', 'pg-d', 'pg-e'];
    for (const n of names)
      await create({ templateName: n, type: n === 'pg-c' ? 'JITP' : 'FLEET_PROVISIONING' });
    const first = await iot.send(new ListProvisioningTemplatesCommand({ maxResults: 2 }));
    expect(first.templates).toHaveLength(2);
    expect(first.nextToken).toBeTruthy();
    const seen: string[] = [];
    for await (const page of paginateListProvisioningTemplates({ client: iot, pageSize: 2 }, {})) {
      seen.push(...page.templates!.map((t) => t.templateName!));
    }
    expect(seen.filter((n) => n.startsWith('pg-'))).toEqual(names);
    const all = (await iot.send(new ListProvisioningTemplatesCommand({}))).templates!;
    expect(all.find((t) => t.templateName === 'pg-c')).toMatchObject({
      type: 'JITP',
      enabled: false,
      templateArn: expect.stringMatching(/:provisioningtemplate\/pg-c$/),
    });
    expect(all[0]!.creationDate).toBeInstanceOf(Date);
    expect(
      await rejects(iot.send(new ListProvisioningTemplatesCommand({ nextToken: 'not-a-token' }))),
    ).toMatchObject({ name: 'InvalidRequestException' });
    expect(await rejects(iot.send(new ListProvisioningTemplatesCommand({ maxResults: 251 })))).toMatchObject({
      name: 'InvalidRequestException',
    });
  });

  it('refuses a bad template body with the place in the template, and the other bad inputs', async () => {
    const bad = await rejects(
      create({
        templateName: 'bad',
        templateBody: JSON.stringify({
          Resources: {
            thing: {
              Type: 'AWS::IoT::Thing',
              Properties: { ThingName: { 'Fn::Join': ['-', [{ Ref: 'Serial' }]] } },
            },
          },
        }),
      }),
    );
    expect(bad).toMatchObject({ name: 'InvalidRequestException', status: 400 });
    expect(bad.message).toMatch(
      /^The templateBody is invalid at Resources\.thing\.Properties\.ThingName\.Fn::Join\[1\]\[0\]: 'Serial' is neither a declared parameter nor a resource/,
    );
    const syntax = await rejects(create({ templateName: 'bad', templateBody: '{\n  "Resources": {\n}' }));
    expect(syntax.message).toMatch(/not valid JSON: .* \(line 3, column 2\)/);
    const several = await rejects(
      create({
        templateName: 'bad',
        templateBody: JSON.stringify({ Resources: { a: { Type: 'X' }, b: { Type: 'Y' } }, Outputs: {} }),
      }),
    );
    expect(several.message).toMatch(/; and 2 more: /);
    const big = await rejects(
      create({
        templateName: 'bad',
        templateBody: JSON.stringify({ Description: 'x'.repeat(11_000), Resources: {} }),
      }),
    );
    expect(big.message).toMatch(/a template may have at most 10240 bytes/);
    expect(await rejects(create({ templateName: 'x'.repeat(37) }))).toMatchObject({
      name: 'InvalidRequestException',
    });
    expect((await rejects(create({ templateName: 'has space' }))).message).toMatch(
      /regular expression pattern/,
    );
    expect(await rejects(create({ templateName: 'bad', type: 'OTHER' as never }))).toMatchObject({
      name: 'InvalidRequestException',
    });
    const jitpHook = await rejects(
      create({
        templateName: 'bad',
        type: 'JITP',
        preProvisioningHook: { targetArn: 'https://h.example.com/x' },
      }),
    );
    expect(jitpHook.message).toBe(
      'A pre-provisioning hook applies to FLEET_PROVISIONING templates only, and bad is JITP',
    );
    const lambda = await rejects(
      create({
        templateName: 'bad',
        preProvisioningHook: { targetArn: 'arn:aws:lambda:us-east-1:123456789012:function:f' },
      }),
    );
    expect(lambda.message).toMatch(
      /^The preProvisioningHook cannot be used: targetArn must be an https:\/\/ or http:\/\/ URL/,
    );
    const plain = await rejects(
      create({ templateName: 'bad', preProvisioningHook: { targetArn: 'http://hooks.example.com/x' } }),
    );
    expect(plain.message).toMatch(/plain http to hooks\.example\.com is refused/);
    // Nothing was stored by any of the refusals.
    expect(
      await rejects(iot.send(new DescribeProvisioningTemplateCommand({ templateName: 'bad' }))),
    ).toMatchObject({
      name: 'ResourceNotFoundException',
    });

    await create({ templateName: 'dup' });
    const dup = await rejects(create({ templateName: 'dup' }));
    expect(dup).toMatchObject({ name: 'ResourceAlreadyExistsException', status: 409 });
    expect(dup.resourceArn).toMatch(/:provisioningtemplate\/dup$/);
    const both = await rejects(
      iot.send(
        new UpdateProvisioningTemplateCommand({
          templateName: 'dup',
          preProvisioningHook: { targetArn: 'https://h.example.com/x' },
          removePreProvisioningHook: true,
        }),
      ),
    );
    expect(both.message).toMatch(/cannot be given together/);
    const badVersion = await rejects(
      iot.send(
        new CreateProvisioningTemplateVersionCommand({
          templateName: 'dup',
          templateBody: '{"Resources": 1}',
        }),
      ),
    );
    expect(badVersion.message).toBe('The templateBody is invalid at Resources: Resources must be an object');
    expect(
      (await iot.send(new ListProvisioningTemplateVersionsCommand({ templateName: 'dup' }))).versions,
    ).toHaveLength(1);
  });

  it.skipIf(!haveAws)('the AWS CLI creates and describes a template', async () => {
    const env = awsEnv(platform);
    const base = ['--endpoint-url', platform.endpoints.http, '--output', 'json'];
    const created = await run(
      AWS,
      [
        'iot',
        'create-provisioning-template',
        '--template-name',
        'cli',
        '--provisioning-role-arn',
        ROLE,
        '--template-body',
        fleetBody('cli-'),
        '--enabled',
        ...base,
      ],
      { env },
    );
    expect(JSON.parse(created.stdout)).toMatchObject({ templateName: 'cli', defaultVersionId: 1 });
    const described = await run(
      AWS,
      ['iot', 'describe-provisioning-template', '--template-name', 'cli', ...base],
      { env },
    );
    expect(JSON.parse(described.stdout)).toMatchObject({
      templateName: 'cli',
      enabled: true,
      templateBody: fleetBody('cli-'),
    });
    const refused = await run(
      AWS,
      [
        'iot',
        'create-provisioning-template-version',
        '--template-name',
        'cli',
        '--template-body',
        '{"Resources":{"t":{"Type":"AWS::IoT::Thing","Properties":{}}}}',
        ...base,
      ],
      { env },
    ).then(
      () => null,
      (err: { stderr: string }) => err.stderr,
    );
    expect(refused).toMatch(
      /InvalidRequestException.*Resources\.t\.Properties\.ThingName: A thing resource needs ThingName/,
    );
  });
});
