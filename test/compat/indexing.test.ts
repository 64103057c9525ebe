import { AWS, PYTHON, awsEnv, awsTools, run } from '../helpers/tools.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeIndexCommand,
  GetIndexingConfigurationCommand,
  IoTClient,
  UpdateIndexingConfigurationCommand,
} from '@aws-sdk/client-iot';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { openChangeChannel } from '../../src/events/index.js';
import { createRegistry, isShadowIndexed, type ThingRegistry } from '../../src/registry/index.js';
import { openDatabase, type Database } from '../../src/store/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { freshPgSchema, postgresUrl } from './harness.js';

/**
 * GetIndexingConfiguration / UpdateIndexingConfiguration through @aws-sdk/client-iot, boto3 and the AWS CLI:
 * AWS's shapes, Thingstead's default (shadows indexed), the mode rules answered with InvalidRequestException,
 * persistence across a restart, the change event, the typed getter the shadow context reads, and another
 * process sharing PostgreSQL seeing the change.
 */

const { haveAws, haveBoto3 } = await awsTools('its indexing tests');

const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-indexing-'));
let p: TestPlatform;
let iot: IoTClient;

async function start() {
  p = await startTestPlatform({}, { dataDir });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  iot = new IoTClient({
    endpoint: p.endpoints.http,
    region: 'us-east-1',
    credentials: { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! },
    maxAttempts: 1,
  });
}
beforeAll(start);
afterAll(async () => {
  iot?.destroy();
  await p?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const get = () => iot.send(new GetIndexingConfigurationCommand({}));

describe('@aws-sdk/client-iot', () => {
  test('the default indexes registry, classic and named shadows and connectivity; thing groups off', async () => {
    const c = await get();
    expect(c.thingIndexingConfiguration).toMatchObject({
      thingIndexingMode: 'REGISTRY_AND_SHADOW',
      thingConnectivityIndexingMode: 'STATUS',
      namedShadowIndexingMode: 'ON',
      deviceDefenderIndexingMode: 'OFF',
      customFields: [],
    });
    expect(c.thingIndexingConfiguration!.managedFields).toEqual(
      expect.arrayContaining([
        { name: 'thingName', type: 'String' },
        { name: 'shadow.version', type: 'Number' },
        { name: 'connectivity.connected', type: 'Boolean' },
      ]),
    );
    expect(c.thingGroupIndexingConfiguration).toMatchObject({ thingGroupIndexingMode: 'OFF' });
    expect((await iot.send(new DescribeIndexCommand({ indexName: 'AWS_Things' }))).schema).toBe(
      'REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS',
    );
    expect(isShadowIndexed(p.registry.indexingConfiguration())).toBe(true);
    expect(isShadowIndexed(p.registry.indexingConfiguration(), 'any-named')).toBe(true);
  });

  test('an update replaces the part given, answers after the getter and the change event are current', async () => {
    const heard: string[] = [];
    const off = p.events.subscribe(['registrySetting'], (e) => {
      if (e.kind === 'registrySetting')
        heard.push(
          `${e.key}:${p.registry.indexingConfiguration().thingIndexingConfiguration.thingIndexingMode}`,
        );
    });
    await iot.send(
      new UpdateIndexingConfigurationCommand({
        thingIndexingConfiguration: {
          thingIndexingMode: 'REGISTRY_AND_SHADOW',
          namedShadowIndexingMode: 'ON',
          filter: { namedShadowNames: ['config', 'firmware'] },
          customFields: [{ name: 'attributes.room', type: 'String' }],
        },
      }),
    );
    off();
    // The subscriber already read the new configuration when it heard of it.
    expect(heard).toEqual(['indexingConfiguration:REGISTRY_AND_SHADOW']);
    const c = await get();
    expect(c.thingIndexingConfiguration).toMatchObject({
      thingIndexingMode: 'REGISTRY_AND_SHADOW',
      thingConnectivityIndexingMode: 'OFF', // omitted: the part given is replaced whole
      namedShadowIndexingMode: 'ON',
      filter: { namedShadowNames: ['config', 'firmware'] },
      customFields: [{ name: 'attributes.room', type: 'String' }],
    });
    expect(c.thingGroupIndexingConfiguration).toMatchObject({ thingGroupIndexingMode: 'OFF' });
    const cfg = p.registry.indexingConfiguration();
    expect([isShadowIndexed(cfg), isShadowIndexed(cfg, 'config'), isShadowIndexed(cfg, 'other')]).toEqual([
      true,
      true,
      false,
    ]);
    expect((await iot.send(new DescribeIndexCommand({ indexName: 'AWS_Things' }))).schema).toBe(
      'REGISTRY_AND_SHADOW',
    );

    await iot.send(
      new UpdateIndexingConfigurationCommand({
        thingGroupIndexingConfiguration: { thingGroupIndexingMode: 'ON' },
      }),
    );
    const g = await get();
    expect(g.thingGroupIndexingConfiguration!.thingGroupIndexingMode).toBe('ON');
    expect(g.thingGroupIndexingConfiguration!.managedFields).toContainEqual({
      name: 'thingGroupName',
      type: 'String',
    });
    expect(g.thingIndexingConfiguration!.filter).toEqual({ namedShadowNames: ['config', 'firmware'] });
  });

  test("AWS's rules: nothing else indexed while things are OFF, named shadows need REGISTRY_AND_SHADOW, enums, 10 names", async () => {
    const bad = async (thingIndexingConfiguration: Record<string, unknown>) => {
      const err = (await iot
        .send(new UpdateIndexingConfigurationCommand({ thingIndexingConfiguration } as never))
        .then(
          () => null,
          (e: unknown) => e,
        )) as { name: string; $metadata: { httpStatusCode: number } } | null;
      return err && { name: err.name, status: err.$metadata.httpStatusCode };
    };
    const refused = { name: 'InvalidRequestException', status: 400 };
    expect(await bad({ thingIndexingMode: 'OFF', thingConnectivityIndexingMode: 'STATUS' })).toEqual(refused);
    expect(await bad({ thingIndexingMode: 'REGISTRY', namedShadowIndexingMode: 'ON' })).toEqual(refused);
    expect(await bad({ thingIndexingMode: 'EVERYTHING' })).toEqual(refused);
    expect(await bad({ thingConnectivityIndexingMode: 'STATUS' })).toEqual(refused);
    expect(
      await bad({
        thingIndexingMode: 'REGISTRY_AND_SHADOW',
        namedShadowIndexingMode: 'ON',
        filter: { namedShadowNames: Array.from({ length: 11 }, (_, i) => `s${i}`) },
      }),
    ).toEqual(refused);
    // Nothing changed.
    expect((await get()).thingIndexingConfiguration!.filter).toEqual({
      namedShadowNames: ['config', 'firmware'],
    });
  });

  test('the configuration survives a restart', async () => {
    await iot.send(
      new UpdateIndexingConfigurationCommand({
        thingIndexingConfiguration: { thingIndexingMode: 'REGISTRY' },
      }),
    );
    iot.destroy();
    await p.stop();
    await start();
    expect((await get()).thingIndexingConfiguration).toMatchObject({
      thingIndexingMode: 'REGISTRY',
      namedShadowIndexingMode: 'OFF',
    });
    expect(isShadowIndexed(p.registry.indexingConfiguration())).toBe(false);
  });
});

const env = () => awsEnv(p);

describe.skipIf(!haveBoto3)('boto3', () => {
  test('update_indexing_configuration then get_indexing_configuration', async () => {
    const script = `
import boto3, json, sys
iot = boto3.client('iot', endpoint_url=sys.argv[1], region_name='us-east-1')
iot.update_indexing_configuration(thingIndexingConfiguration={
    'thingIndexingMode': 'REGISTRY_AND_SHADOW', 'thingConnectivityIndexingMode': 'STATUS'})
c = iot.get_indexing_configuration()
try:
    iot.update_indexing_configuration(thingIndexingConfiguration={'thingIndexingMode': 'OFF', 'namedShadowIndexingMode': 'ON'})
    err = None
except iot.exceptions.InvalidRequestException:
    err = 'InvalidRequestException'
print(json.dumps({'mode': c['thingIndexingConfiguration']['thingIndexingMode'],
                  'connectivity': c['thingIndexingConfiguration']['thingConnectivityIndexingMode'],
                  'groups': c['thingGroupIndexingConfiguration']['thingGroupIndexingMode'], 'err': err}))
`;
    const r = await run(PYTHON, ['-c', script, p.endpoints.http], { env: env() });
    expect(JSON.parse(r.stdout)).toEqual({
      mode: 'REGISTRY_AND_SHADOW',
      connectivity: 'STATUS',
      groups: 'ON',
      err: 'InvalidRequestException',
    });
  });
});

describe.skipIf(!haveAws)('AWS CLI', () => {
  test('update-indexing-configuration and get-indexing-configuration', async () => {
    const cli = (args: string[]) =>
      run(AWS, ['iot', ...args, '--endpoint-url', p.endpoints.http, '--output', 'json'], { env: env() });
    await cli([
      'update-indexing-configuration',
      '--thing-indexing-configuration',
      'thingIndexingMode=REGISTRY_AND_SHADOW,namedShadowIndexingMode=ON',
    ]);
    const c = JSON.parse((await cli(['get-indexing-configuration'])).stdout);
    expect(c.thingIndexingConfiguration).toMatchObject({
      thingIndexingMode: 'REGISTRY_AND_SHADOW',
      namedShadowIndexingMode: 'ON',
    });
  });
});

const pg = await postgresUrl();

describe.skipIf(!pg)('two processes sharing PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  const dbs: Database[] = [];
  const registries: ThingRegistry[] = [];
  const channels: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    schema = await freshPgSchema(pg!);
    for (let i = 0; i < 2; i++) {
      const db = await openDatabase({ dataDir: tmpdir(), databaseUrl: schema.url });
      const events = await openChangeChannel(db);
      dbs.push(db);
      channels.push(events);
      registries.push(await createRegistry({ db, events, region: 'us-east-1', accountId: '000000000000' }));
    }
  });
  afterAll(async () => {
    for (const r of registries) await r.close();
    for (const c of channels) await c.close();
    for (const db of dbs) await db.close();
    await schema?.drop();
  });

  test("one node's update reaches the other's getter through the change event", async () => {
    const [a, b] = registries as [ThingRegistry, ThingRegistry];
    expect(b.indexingConfiguration().thingIndexingConfiguration.thingIndexingMode).toBe(
      'REGISTRY_AND_SHADOW',
    );
    await a.updateIndexingConfiguration({ thingIndexingConfiguration: { thingIndexingMode: 'OFF' } });
    await a.settled();
    await waitFor(
      () => b.indexingConfiguration().thingIndexingConfiguration.thingIndexingMode === 'OFF',
      5000,
      'the other node to apply the indexing change',
    );
    expect(isShadowIndexed(b.indexingConfiguration())).toBe(false);
  });
});
