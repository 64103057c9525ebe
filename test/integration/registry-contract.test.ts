import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AddThingToBillingGroupCommand,
  AddThingToThingGroupCommand,
  AttachThingPrincipalCommand,
  CreateBillingGroupCommand,
  CreateDynamicThingGroupCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  DeleteBillingGroupCommand,
  DeleteDynamicThingGroupCommand,
  DeleteThingCommand,
  DeleteThingGroupCommand,
  DeleteThingTypeCommand,
  DeprecateThingTypeCommand,
  DescribeBillingGroupCommand,
  DescribeEndpointCommand,
  DescribeEventConfigurationsCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DescribeThingTypeCommand,
  DescribeIndexCommand,
  GetIndexingConfigurationCommand,
  ListIndicesCommand,
  ListThingPrincipalsV2Command,
  DetachThingPrincipalCommand,
  GetRegistrationCodeCommand,
  InvalidQueryException,
  InvalidRequestException,
  IoTClient,
  ListBillingGroupsCommand,
  ListPrincipalThingsCommand,
  ListThingGroupsCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  ListThingsCommand,
  ListThingsInBillingGroupCommand,
  ListThingsInThingGroupCommand,
  ListThingTypesCommand,
  RemoveThingFromBillingGroupCommand,
  RemoveThingFromThingGroupCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  SearchIndexCommand,
  UpdateBillingGroupCommand,
  UpdateDynamicThingGroupCommand,
  UpdateEventConfigurationsCommand,
  UpdateThingCommand,
  UpdateThingGroupCommand,
  UpdateThingGroupsForThingCommand,
  UpdateThingTypeCommand,
  VersionConflictException,
  paginateListThings,
} from '@aws-sdk/client-iot';
import { postgresUrl, startApi, type ApiHarness, type StoreKind } from '../compat/harness.js';

/**
 * The registry contract suite: every registry operation through @aws-sdk/client-iot (maxAttempts 1) against
 * the API built over each store implementation. The same cases run on SQLite and PostgreSQL.
 */

const pg = await postgresUrl();
const kinds: StoreKind[] = pg ? ['sqlite', 'postgres'] : ['sqlite'];

/** Expect `p` to reject with the SDK's modeled exception class. */
async function rejects<T>(p: Promise<unknown>, cls: new (...a: any[]) => T, message?: RegExp): Promise<T> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${cls.name}`).toBeInstanceOf(cls);
  if (message) expect((err as Error).message).toMatch(message);
  return err as T;
}

describe.each(kinds)('registry contract on %s', (kind) => {
  let h: ApiHarness;
  let iot: IoTClient;
  beforeAll(async () => {
    h = await startApi(kind, pg ?? undefined);
    iot = h.client();
  });
  afterAll(async () => {
    iot?.destroy();
    await h?.close();
  });

  test('CreateThing / DescribeThing: ARN with region and account, id, version 1, defaultClientId', async () => {
    const out = await iot.send(
      new CreateThingCommand({
        thingName: 'thing-1',
        attributePayload: { attributes: { color: 'red', size: '3' } },
      }),
    );
    expect(out.thingArn).toBe('arn:aws:iot:us-east-1:123456789012:thing/thing-1');
    expect(out.thingId).toMatch(/^[0-9a-f-]{36}$/);
    const d = await iot.send(new DescribeThingCommand({ thingName: 'thing-1' }));
    expect(d).toMatchObject({
      thingName: 'thing-1',
      thingId: out.thingId,
      thingArn: out.thingArn,
      defaultClientId: 'thing-1',
      version: 1,
      attributes: { color: 'red', size: '3' },
    });
  });

  test('CreateThing is idempotent for the same configuration, RAE (with resourceId/Arn) otherwise [AWS CreateThing]', async () => {
    const a = await iot.send(
      new CreateThingCommand({ thingName: 'idem', attributePayload: { attributes: { a: '1' } } }),
    );
    const b = await iot.send(
      new CreateThingCommand({ thingName: 'idem', attributePayload: { attributes: { a: '1' } } }),
    );
    expect(b.thingId).toBe(a.thingId);
    const err = await rejects(
      iot.send(new CreateThingCommand({ thingName: 'idem', attributePayload: { attributes: { a: '2' } } })),
      ResourceAlreadyExistsException,
      /already exists/,
    );
    expect(err.resourceId).toBe(a.thingId);
    expect(err.resourceArn).toBe(a.thingArn);
    expect(err.$metadata.httpStatusCode).toBe(409);
  });

  test('invalid names, attributes and limits are InvalidRequestException with AWS wording', async () => {
    await rejects(
      iot.send(new CreateThingCommand({ thingName: 'bad name!' })),
      InvalidRequestException,
      /Value 'bad name!' at 'thingName' failed to satisfy constraint: Member must satisfy regular expression pattern/,
    );
    await rejects(
      iot.send(new CreateThingCommand({ thingName: 'x'.repeat(129) })),
      InvalidRequestException,
      /length less than or equal to 128/,
    );
    await rejects(
      iot.send(
        new CreateThingCommand({ thingName: 'attr-bad', attributePayload: { attributes: { 'a b': 'x' } } }),
      ),
      InvalidRequestException,
      /attributePayload\.attributes/,
    );
    await rejects(
      iot.send(
        new CreateThingCommand({
          thingName: 'attr-long',
          attributePayload: { attributes: { a: 'v'.repeat(801) } },
        }),
      ),
      InvalidRequestException,
      /800/,
    );
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    await iot.send(new CreateThingCommand({ thingName: 'attr-50', attributePayload: { attributes: fifty } }));
    await rejects(
      iot.send(
        new UpdateThingCommand({
          thingName: 'attr-50',
          attributePayload: { attributes: { k50: 'v' }, merge: true },
        }),
      ),
      InvalidRequestException,
      /51 attributes; the maximum is 50/,
    );
    await rejects(iot.send(new ListThingsCommand({ maxResults: 251 })), InvalidRequestException, /250/);
    await rejects(
      iot.send(new ListThingsCommand({ maxResults: 0 })),
      InvalidRequestException,
      /greater than or equal to 1/,
    );
  });

  test('DescribeThing of a missing thing is ResourceNotFoundException (404)', async () => {
    const err = await rejects(
      iot.send(new DescribeThingCommand({ thingName: 'nope' })),
      ResourceNotFoundException,
      /nope/,
    );
    expect(err.$metadata.httpStatusCode).toBe(404);
  });

  test('UpdateThing merges or replaces attributes, bumps version, honours expectedVersion (VCE)', async () => {
    await iot.send(
      new CreateThingCommand({ thingName: 'upd', attributePayload: { attributes: { a: '1', b: '2' } } }),
    );
    await iot.send(
      new UpdateThingCommand({
        thingName: 'upd',
        attributePayload: { attributes: { b: '', c: '3' }, merge: true },
        expectedVersion: 1,
      }),
    );
    let d = await iot.send(new DescribeThingCommand({ thingName: 'upd' }));
    expect(d.attributes).toEqual({ a: '1', c: '3' });
    expect(d.version).toBe(2);
    await rejects(
      iot.send(
        new UpdateThingCommand({
          thingName: 'upd',
          attributePayload: { attributes: { z: '1' } },
          expectedVersion: 1,
        }),
      ),
      VersionConflictException,
      /expected 1, current 2/,
    );
    await iot.send(
      new UpdateThingCommand({ thingName: 'upd', attributePayload: { attributes: { z: '1' } } }),
    );
    d = await iot.send(new DescribeThingCommand({ thingName: 'upd' }));
    expect(d.attributes).toEqual({ z: '1' });
    expect(d.version).toBe(3);
    await rejects(iot.send(new UpdateThingCommand({ thingName: 'missing-upd' })), ResourceNotFoundException);
  });

  test('DeleteThing: missing thing succeeds; expectedVersion mismatch is VCE', async () => {
    await iot.send(new DeleteThingCommand({ thingName: 'never-existed' }));
    await iot.send(new CreateThingCommand({ thingName: 'del' }));
    await rejects(
      iot.send(new DeleteThingCommand({ thingName: 'del', expectedVersion: 7 })),
      VersionConflictException,
    );
    await iot.send(new DeleteThingCommand({ thingName: 'del', expectedVersion: 1 }));
    await rejects(iot.send(new DescribeThingCommand({ thingName: 'del' })), ResourceNotFoundException);
  });

  test('thing types: create (idempotent), describe, list, update, deprecate/undeprecate, delete rules', async () => {
    const props = { thingTypeDescription: 'Sensor v1', searchableAttributes: ['serial'] };
    const t = await iot.send(
      new CreateThingTypeCommand({ thingTypeName: 'sensor', thingTypeProperties: props }),
    );
    expect(t.thingTypeArn).toBe('arn:aws:iot:us-east-1:123456789012:thingtype/sensor');
    await iot.send(new CreateThingTypeCommand({ thingTypeName: 'sensor', thingTypeProperties: props }));
    await rejects(
      iot.send(
        new CreateThingTypeCommand({
          thingTypeName: 'sensor',
          thingTypeProperties: { thingTypeDescription: 'other' },
        }),
      ),
      ResourceAlreadyExistsException,
    );
    await rejects(
      iot.send(
        new CreateThingTypeCommand({
          thingTypeName: 'too-many',
          thingTypeProperties: { searchableAttributes: ['a', 'b', 'c', 'd'] },
        }),
      ),
      InvalidRequestException,
      /less than or equal to 3/,
    );
    const d = await iot.send(new DescribeThingTypeCommand({ thingTypeName: 'sensor' }));
    expect(d.thingTypeProperties).toMatchObject(props);
    expect(d.thingTypeMetadata?.deprecated).toBe(false);
    expect(d.thingTypeMetadata?.creationDate).toBeInstanceOf(Date);
    expect(Math.abs(d.thingTypeMetadata!.creationDate!.getTime() - Date.now())).toBeLessThan(60_000);

    await iot.send(
      new CreateThingCommand({
        thingName: 'typed',
        thingTypeName: 'sensor',
        attributePayload: { attributes: { serial: 'S1' } },
      }),
    );
    await rejects(
      iot.send(new CreateThingCommand({ thingName: 'typed2', thingTypeName: 'no-such-type' })),
      ResourceNotFoundException,
    );
    const list = await iot.send(new ListThingsCommand({ thingTypeName: 'sensor' }));
    expect(list.things?.map((x) => x.thingName)).toEqual(['typed']);
    expect(list.things?.[0]?.thingTypeName).toBe('sensor');

    await iot.send(
      new UpdateThingTypeCommand({
        thingTypeName: 'sensor',
        thingTypeProperties: { thingTypeDescription: 'Sensor v2' },
      }),
    );
    expect(
      (await iot.send(new DescribeThingTypeCommand({ thingTypeName: 'sensor' }))).thingTypeProperties
        ?.thingTypeDescription,
    ).toBe('Sensor v2');

    await rejects(
      iot.send(new DeleteThingTypeCommand({ thingTypeName: 'sensor' })),
      InvalidRequestException,
      /deprecated/,
    );
    await iot.send(new DeprecateThingTypeCommand({ thingTypeName: 'sensor' }));
    const dep = await iot.send(new DescribeThingTypeCommand({ thingTypeName: 'sensor' }));
    expect(dep.thingTypeMetadata?.deprecated).toBe(true);
    expect(dep.thingTypeMetadata?.deprecationDate).toBeInstanceOf(Date);
    await rejects(
      iot.send(new CreateThingCommand({ thingName: 'typed3', thingTypeName: 'sensor' })),
      InvalidRequestException,
      /deprecated/,
    );
    await rejects(
      iot.send(new DeleteThingTypeCommand({ thingTypeName: 'sensor' })),
      InvalidRequestException,
      /still used by 1/,
    );
    await iot.send(new DeprecateThingTypeCommand({ thingTypeName: 'sensor', undoDeprecate: true }));
    expect(
      (await iot.send(new DescribeThingTypeCommand({ thingTypeName: 'sensor' }))).thingTypeMetadata
        ?.deprecated,
    ).toBe(false);
    await iot.send(new UpdateThingCommand({ thingName: 'typed', removeThingType: true }));
    await iot.send(new DeprecateThingTypeCommand({ thingTypeName: 'sensor' }));
    await iot.send(new DeleteThingTypeCommand({ thingTypeName: 'sensor' }));
    await rejects(
      iot.send(new DescribeThingTypeCommand({ thingTypeName: 'sensor' })),
      ResourceNotFoundException,
    );

    await iot.send(new CreateThingTypeCommand({ thingTypeName: 'tt-a' }));
    await iot.send(new CreateThingTypeCommand({ thingTypeName: 'tt-b' }));
    const types = await iot.send(new ListThingTypesCommand({ maxResults: 1 }));
    expect(types.thingTypes).toHaveLength(1);
    expect(types.nextToken).toBeTruthy();
    const filtered = await iot.send(new ListThingTypesCommand({ thingTypeName: 'tt-b' }));
    expect(filtered.thingTypes?.map((x) => x.thingTypeName)).toEqual(['tt-b']);
  });

  test('ListThings paginates with nextToken to the end; attribute filters; bad token is IRE', async () => {
    for (let i = 0; i < 7; i++)
      await iot.send(
        new CreateThingCommand({
          thingName: `page-${i}`,
          attributePayload: { attributes: { batch: 'p', n: `v${i}` } },
        }),
      );
    const names: string[] = [];
    for await (const p of paginateListThings(
      { client: iot, pageSize: 3 },
      { attributeName: 'batch', attributeValue: 'p' },
    ))
      names.push(...(p.things ?? []).map((t) => t.thingName!));
    expect(names).toEqual(Array.from({ length: 7 }, (_, i) => `page-${i}`));
    const prefix = await iot.send(
      new ListThingsCommand({ attributeName: 'n', attributeValue: 'v1', usePrefixAttributeValue: true }),
    );
    expect(prefix.things?.map((t) => t.thingName)).toEqual(['page-1']);
    const first = await iot.send(new ListThingsCommand({ maxResults: 2 }));
    expect(first.things).toHaveLength(2);
    expect(first.nextToken).toBeTruthy();
    await rejects(
      iot.send(new ListThingsCommand({ nextToken: 'not-a-token' })),
      InvalidRequestException,
      /nextToken/,
    );
  });

  test('thing groups: nesting, metadata, versions, memberships, recursive listing, delete rules', async () => {
    const root = await iot.send(
      new CreateThingGroupCommand({
        thingGroupName: 'site',
        thingGroupProperties: {
          thingGroupDescription: 'All sites',
          attributePayload: { attributes: { region: 'eu' } },
        },
      }),
    );
    expect(root.thingGroupArn).toBe('arn:aws:iot:us-east-1:123456789012:thinggroup/site');
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'floor1', parentGroupName: 'site' }));
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'room1', parentGroupName: 'floor1' }));
    await rejects(
      iot.send(new CreateThingGroupCommand({ thingGroupName: 'orphan', parentGroupName: 'nope' })),
      ResourceNotFoundException,
    );
    const d = await iot.send(new DescribeThingGroupCommand({ thingGroupName: 'room1' }));
    expect(d.version).toBe(1);
    expect(d.thingGroupMetadata?.parentGroupName).toBe('floor1');
    expect(d.thingGroupMetadata?.rootToParentThingGroups?.map((g) => g.groupName)).toEqual([
      'site',
      'floor1',
    ]);
    expect(d.thingGroupMetadata?.creationDate).toBeInstanceOf(Date);

    // depth limit 7
    let parent = 'room1';
    for (let i = 4; i <= 7; i++) {
      await iot.send(new CreateThingGroupCommand({ thingGroupName: `lvl${i}`, parentGroupName: parent }));
      parent = `lvl${i}`;
    }
    await rejects(
      iot.send(new CreateThingGroupCommand({ thingGroupName: 'lvl8', parentGroupName: 'lvl7' })),
      InvalidRequestException,
      /at most 7 levels/,
    );

    const u = await iot.send(
      new UpdateThingGroupCommand({
        thingGroupName: 'site',
        thingGroupProperties: { attributePayload: { attributes: { tier: 'gold' }, merge: true } },
        expectedVersion: 1,
      }),
    );
    expect(u.version).toBe(2);
    await rejects(
      iot.send(
        new UpdateThingGroupCommand({ thingGroupName: 'site', thingGroupProperties: {}, expectedVersion: 1 }),
      ),
      VersionConflictException,
    );
    expect(
      (await iot.send(new DescribeThingGroupCommand({ thingGroupName: 'site' }))).thingGroupProperties,
    ).toEqual({
      thingGroupDescription: 'All sites',
      attributePayload: { attributes: { region: 'eu', tier: 'gold' } },
    });

    await iot.send(new CreateThingCommand({ thingName: 'm1' }));
    await iot.send(new CreateThingCommand({ thingName: 'm2' }));
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'site', thingName: 'm1' }));
    await iot.send(
      new AddThingToThingGroupCommand({
        thingGroupArn: 'arn:aws:iot:us-east-1:123456789012:thinggroup/room1',
        thingArn: 'arn:aws:iot:us-east-1:123456789012:thing/m2',
      }),
    );
    await rejects(
      iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'site', thingName: 'ghost' })),
      ResourceNotFoundException,
    );
    expect((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'site' }))).things).toEqual([
      'm1',
    ]);
    expect(
      (await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'site', recursive: true }))).things,
    ).toEqual(['m1', 'm2']);
    const groups = await iot.send(new ListThingGroupsCommand({ parentGroup: 'site' }));
    expect(groups.thingGroups?.map((g) => g.groupName)).toEqual(['floor1']);
    const rec = await iot.send(new ListThingGroupsCommand({ parentGroup: 'site', recursive: true }));
    expect(rec.thingGroups?.map((g) => g.groupName)).toEqual([
      'floor1',
      'lvl4',
      'lvl5',
      'lvl6',
      'lvl7',
      'room1',
    ]);
    const pre = await iot.send(new ListThingGroupsCommand({ namePrefixFilter: 'lvl' }));
    expect(pre.thingGroups).toHaveLength(4);

    await iot.send(
      new UpdateThingGroupsForThingCommand({
        thingName: 'm1',
        thingGroupsToAdd: ['floor1'],
        thingGroupsToRemove: ['site'],
      }),
    );
    const forThing = await iot.send(new ListThingGroupsForThingCommand({ thingName: 'm1' }));
    expect(forThing.thingGroups).toEqual([
      { groupName: 'floor1', groupArn: 'arn:aws:iot:us-east-1:123456789012:thinggroup/floor1' },
    ]);
    await iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: 'floor1', thingName: 'm1' }));
    expect((await iot.send(new ListThingGroupsForThingCommand({ thingName: 'm1' }))).thingGroups).toEqual([]);

    await rejects(
      iot.send(new DeleteThingGroupCommand({ thingGroupName: 'lvl6' })),
      InvalidRequestException,
      /child groups/,
    );
    await iot.send(new DeleteThingGroupCommand({ thingGroupName: 'lvl7' }));
    await iot.send(new DeleteThingGroupCommand({ thingGroupName: 'lvl7' })); // deleting a missing group succeeds
    await rejects(
      iot.send(new DescribeThingGroupCommand({ thingGroupName: 'lvl7' })),
      ResourceNotFoundException,
    );
  });

  test('a thing can be in at most 10 static groups', async () => {
    await iot.send(new CreateThingCommand({ thingName: 'joiner' }));
    for (let i = 0; i < 10; i++) {
      await iot.send(new CreateThingGroupCommand({ thingGroupName: `g10-${i}` }));
      await iot.send(new AddThingToThingGroupCommand({ thingGroupName: `g10-${i}`, thingName: 'joiner' }));
    }
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'g10-x' }));
    const err = await iot
      .send(new AddThingToThingGroupCommand({ thingGroupName: 'g10-x', thingName: 'joiner' }))
      .catch((e: Error) => e);
    expect((err as Error).name).toBe('LimitExceededException');
  });

  test('dynamic thing groups: membership follows the query as things change', async () => {
    await iot.send(
      new CreateThingCommand({
        thingName: 'dyn-a',
        attributePayload: { attributes: { temp: '30', model: 'x1' } },
      }),
    );
    await iot.send(
      new CreateThingCommand({
        thingName: 'dyn-b',
        attributePayload: { attributes: { temp: '10', model: 'x1' } },
      }),
    );
    const g = await iot.send(
      new CreateDynamicThingGroupCommand({
        thingGroupName: 'hot',
        queryString: 'attributes.temp > 25 AND attributes.model:x*',
      }),
    );
    expect(g).toMatchObject({ thingGroupName: 'hot', indexName: 'AWS_Things', queryVersion: '2017-09-30' });
    expect((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'hot' }))).things).toEqual([
      'dyn-a',
    ]);
    await iot.send(
      new UpdateThingCommand({
        thingName: 'dyn-b',
        attributePayload: { attributes: { temp: '40' }, merge: true },
      }),
    );
    expect((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'hot' }))).things).toEqual([
      'dyn-a',
      'dyn-b',
    ]);
    expect(
      (await iot.send(new ListThingGroupsForThingCommand({ thingName: 'dyn-b' }))).thingGroups?.map(
        (x) => x.groupName,
      ),
    ).toEqual(['hot']);
    const d = await iot.send(new DescribeThingGroupCommand({ thingGroupName: 'hot' }));
    expect(d).toMatchObject({
      queryString: 'attributes.temp > 25 AND attributes.model:x*',
      status: 'ACTIVE',
    });
    await rejects(
      iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'hot', thingName: 'dyn-a' })),
      InvalidRequestException,
      /dynamic/,
    );
    const u = await iot.send(
      new UpdateDynamicThingGroupCommand({
        thingGroupName: 'hot',
        thingGroupProperties: {},
        queryString: 'attributes.temp >= 40',
      }),
    );
    expect(u.version).toBe(2);
    expect((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'hot' }))).things).toEqual([
      'dyn-b',
    ]);
    await rejects(
      iot.send(
        new CreateDynamicThingGroupCommand({
          thingGroupName: 'broken',
          queryString: 'attributes.temp:[1 TO',
        }),
      ),
      InvalidQueryException,
    );
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'static-one' }));
    await rejects(
      iot.send(new DeleteDynamicThingGroupCommand({ thingGroupName: 'static-one' })),
      InvalidRequestException,
    );
    await iot.send(new DeleteDynamicThingGroupCommand({ thingGroupName: 'hot' }));
    await rejects(
      iot.send(new DescribeThingGroupCommand({ thingGroupName: 'hot' })),
      ResourceNotFoundException,
    );
  });

  test('SearchIndex: fields, wildcards, ranges, AND/OR/NOT, connectivity, pagination', async () => {
    await iot.send(new CreateThingTypeCommand({ thingTypeName: 'lamp' }));
    for (let i = 0; i < 5; i++)
      await iot.send(
        new CreateThingCommand({
          thingName: `lamp-${i}`,
          thingTypeName: 'lamp',
          attributePayload: { attributes: { watts: String(i * 10), room: i % 2 ? 'kitchen' : 'hall' } },
        }),
      );
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'lights' }));
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'lights', thingName: 'lamp-3' }));
    h.connected.add('lamp-4');
    const q = async (queryString: string) =>
      ((await iot.send(new SearchIndexCommand({ queryString }))).things ?? []).map((t) => t.thingName);
    expect(await q('thingName:lamp-*')).toEqual(['lamp-0', 'lamp-1', 'lamp-2', 'lamp-3', 'lamp-4']);
    expect(await q('thingName:lamp-? AND attributes.room:kitchen')).toEqual(['lamp-1', 'lamp-3']);
    expect(await q('thingTypeName:lamp AND attributes.watts:[10 TO 30}')).toEqual(['lamp-1', 'lamp-2']);
    expect(await q('thingTypeName:lamp AND NOT attributes.room:hall')).toEqual(['lamp-1', 'lamp-3']);
    expect(await q('thingGroupNames:lights OR attributes.watts>=40')).toEqual(['lamp-3', 'lamp-4']);
    expect(await q('thingTypeName:lamp AND connectivity.connected:true')).toEqual(['lamp-4']);
    const doc = (await iot.send(new SearchIndexCommand({ queryString: 'thingName:lamp-3' }))).things![0]!;
    expect(doc).toMatchObject({
      thingName: 'lamp-3',
      thingTypeName: 'lamp',
      thingGroupNames: ['lights'],
      attributes: { watts: '30', room: 'kitchen' },
      connectivity: { connected: false },
    });
    const p1 = await iot.send(new SearchIndexCommand({ queryString: 'thingTypeName:lamp', maxResults: 2 }));
    expect(p1.things?.map((t) => t.thingName)).toEqual(['lamp-0', 'lamp-1']);
    const p2 = await iot.send(
      new SearchIndexCommand({ queryString: 'thingTypeName:lamp', maxResults: 2, nextToken: p1.nextToken }),
    );
    expect(p2.things?.map((t) => t.thingName)).toEqual(['lamp-2', 'lamp-3']);
    await rejects(iot.send(new SearchIndexCommand({ queryString: 'thingName:(' })), InvalidQueryException);
    await rejects(
      iot.send(new SearchIndexCommand({ queryString: 'nosuchfield:1' })),
      InvalidQueryException,
      /Unknown field/,
    );
    await rejects(
      iot.send(new SearchIndexCommand({ queryString: 'a', indexName: 'Other' })),
      ResourceNotFoundException,
    );
  });

  test('principals: attach, list both ways, exclusive, detach; DeleteThing refuses while attached', async () => {
    const cert = 'arn:aws:iot:us-east-1:123456789012:cert/' + 'a'.repeat(64);
    await iot.send(new CreateThingCommand({ thingName: 'p-thing' }));
    await iot.send(new CreateThingCommand({ thingName: 'p-thing2' }));
    await iot.send(new AttachThingPrincipalCommand({ thingName: 'p-thing', principal: cert }));
    await iot.send(new AttachThingPrincipalCommand({ thingName: 'p-thing2', principal: cert }));
    expect((await iot.send(new ListThingPrincipalsCommand({ thingName: 'p-thing' }))).principals).toEqual([
      cert,
    ]);
    expect((await iot.send(new ListPrincipalThingsCommand({ principal: cert }))).things).toEqual([
      'p-thing',
      'p-thing2',
    ]);
    await rejects(
      iot.send(
        new AttachThingPrincipalCommand({
          thingName: 'p-thing',
          principal: cert,
          thingPrincipalType: 'EXCLUSIVE_THING',
        }),
      ),
      InvalidRequestException,
      /already attached/,
    );
    await rejects(
      iot.send(new AttachThingPrincipalCommand({ thingName: 'nope', principal: cert })),
      ResourceNotFoundException,
    );
    await rejects(
      iot.send(new DeleteThingCommand({ thingName: 'p-thing' })),
      InvalidRequestException,
      /principals attached/,
    );
    await iot.send(new DetachThingPrincipalCommand({ thingName: 'p-thing', principal: cert }));
    expect((await iot.send(new ListThingPrincipalsCommand({ thingName: 'p-thing' }))).principals).toEqual([]);
    await iot.send(new DeleteThingCommand({ thingName: 'p-thing' }));
    await rejects(
      iot.send(new ListThingPrincipalsCommand({ thingName: 'p-thing' })),
      ResourceNotFoundException,
    );
  });

  test('ListThingPrincipalsV2, DescribeIndex, ListIndices, GetIndexingConfiguration', async () => {
    const cert = 'arn:aws:iot:us-east-1:123456789012:cert/' + 'b'.repeat(64);
    await iot.send(new CreateThingCommand({ thingName: 'v2-thing' }));
    await iot.send(
      new AttachThingPrincipalCommand({
        thingName: 'v2-thing',
        principal: cert,
        thingPrincipalType: 'EXCLUSIVE_THING',
      }),
    );
    expect(
      (await iot.send(new ListThingPrincipalsV2Command({ thingName: 'v2-thing' }))).thingPrincipalObjects,
    ).toEqual([{ principal: cert, thingPrincipalType: 'EXCLUSIVE_THING' }]);
    await iot.send(new DetachThingPrincipalCommand({ thingName: 'v2-thing', principal: cert }));
    expect(await iot.send(new DescribeIndexCommand({ indexName: 'AWS_Things' }))).toMatchObject({
      indexName: 'AWS_Things',
      indexStatus: 'ACTIVE',
    });
    await rejects(iot.send(new DescribeIndexCommand({ indexName: 'Nope' })), ResourceNotFoundException);
    expect((await iot.send(new ListIndicesCommand({}))).indexNames).toEqual(['AWS_Things']);
    expect(
      (await iot.send(new GetIndexingConfigurationCommand({}))).thingIndexingConfiguration?.thingIndexingMode,
    ).toBe('REGISTRY_AND_SHADOW'); // Thingstead's default: shadows indexed (test/compat/indexing.test.ts)
  });

  test('billing groups: create, describe, update version, add/remove things, list, delete', async () => {
    const b = await iot.send(
      new CreateBillingGroupCommand({
        billingGroupName: 'bg1',
        billingGroupProperties: { billingGroupDescription: 'd' },
      }),
    );
    expect(b.billingGroupArn).toBe('arn:aws:iot:us-east-1:123456789012:billinggroup/bg1');
    await iot.send(new CreateThingCommand({ thingName: 'billed' }));
    await iot.send(new AddThingToBillingGroupCommand({ billingGroupName: 'bg1', thingName: 'billed' }));
    expect((await iot.send(new DescribeThingCommand({ thingName: 'billed' }))).billingGroupName).toBe('bg1');
    expect((await iot.send(new ListThingsInBillingGroupCommand({ billingGroupName: 'bg1' }))).things).toEqual(
      ['billed'],
    );
    expect(
      (
        await iot.send(
          new UpdateBillingGroupCommand({
            billingGroupName: 'bg1',
            billingGroupProperties: { billingGroupDescription: 'e' },
          }),
        )
      ).version,
    ).toBe(2);
    expect(
      (await iot.send(new DescribeBillingGroupCommand({ billingGroupName: 'bg1' }))).billingGroupProperties,
    ).toEqual({
      billingGroupDescription: 'e',
    });
    expect((await iot.send(new ListBillingGroupsCommand({}))).billingGroups?.map((g) => g.groupName)).toEqual(
      ['bg1'],
    );
    await iot.send(new RemoveThingFromBillingGroupCommand({ billingGroupName: 'bg1', thingName: 'billed' }));
    expect(
      (await iot.send(new DescribeThingCommand({ thingName: 'billed' }))).billingGroupName,
    ).toBeUndefined();
    await iot.send(new DeleteBillingGroupCommand({ billingGroupName: 'bg1' }));
    await rejects(
      iot.send(new DescribeBillingGroupCommand({ billingGroupName: 'bg1' })),
      ResourceNotFoundException,
    );
  });

  test('registry events are off by default and published per enabled type [reference §8.6]', async () => {
    const before = await iot.send(new DescribeEventConfigurationsCommand({}));
    expect(before.eventConfigurations?.THING).toEqual({ Enabled: false });
    expect(before.creationDate).toBeInstanceOf(Date);
    h.published.length = 0;
    await iot.send(new CreateThingCommand({ thingName: 'ev-0' }));
    expect(h.published).toEqual([]);
    await iot.send(
      new UpdateEventConfigurationsCommand({
        eventConfigurations: {
          THING: { Enabled: true },
          THING_GROUP_MEMBERSHIP: { Enabled: true },
          THING_GROUP: { Enabled: true },
        },
      }),
    );
    expect(
      (await iot.send(new DescribeEventConfigurationsCommand({}))).eventConfigurations?.THING?.Enabled,
    ).toBe(true);
    await iot.send(
      new CreateThingCommand({ thingName: 'ev-1', attributePayload: { attributes: { k: 'v' } } }),
    );
    await iot.send(
      new UpdateThingCommand({ thingName: 'ev-1', attributePayload: { attributes: { k: 'w' } } }),
    );
    await iot.send(new CreateThingGroupCommand({ thingGroupName: 'ev-g' }));
    await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'ev-g', thingName: 'ev-1' }));
    await iot.send(new DeleteThingCommand({ thingName: 'ev-1' }));
    expect(h.published.map((e) => e.topic)).toEqual([
      '$aws/events/thing/ev-1/created',
      '$aws/events/thing/ev-1/updated',
      '$aws/events/thingGroup/ev-g/created',
      '$aws/events/thingGroupMembership/thingGroup/ev-g/thing/ev-1/added',
      '$aws/events/thing/ev-1/deleted',
    ]);
    expect(h.published[1]!.payload).toMatchObject({
      eventType: 'THING_EVENT',
      operation: 'UPDATED',
      accountId: '123456789012',
      thingName: 'ev-1',
      versionNumber: 2,
      thingTypeName: null,
      attributes: { k: 'w' },
    });
    expect(typeof h.published[1]!.payload.timestamp).toBe('number');
    expect(h.published[3]!.payload).toMatchObject({
      eventType: 'THING_GROUP_MEMBERSHIP_EVENT',
      operation: 'ADDED',
    });
  });

  test('DescribeEndpoint returns a bare host; GetRegistrationCode is stable', async () => {
    const e = await iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }));
    expect(e.endpointAddress).toBe('localhost');
    await rejects(
      iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Bogus' })),
      InvalidRequestException,
    );
    const a = await iot.send(new GetRegistrationCodeCommand({}));
    const b = await iot.send(new GetRegistrationCodeCommand({}));
    expect(a.registrationCode).toMatch(/^[0-9a-f]{64}$/);
    expect(b.registrationCode).toBe(a.registrationCode);
  });

  test('the fleet index is rebuilt from the store at start (restart keeps search results)', async () => {
    const before = (await iot.send(new SearchIndexCommand({ queryString: 'thingName:lamp-*' }))).things
      ?.length;
    await h.registry.reload();
    const after = (await iot.send(new SearchIndexCommand({ queryString: 'thingName:lamp-*' }))).things
      ?.length;
    expect(after).toBe(before);
    expect(h.registry.index.size).toBeGreaterThan(10);
  });
});
