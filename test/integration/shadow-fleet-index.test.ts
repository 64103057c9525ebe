import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateDynamicThingGroupCommand,
  CreateThingCommand,
  CreateThingTypeCommand,
  DeleteThingCommand,
  IoTClient,
  ListThingGroupsForThingCommand,
  ListThingsInThingGroupCommand,
  SearchIndexCommand,
  UpdateIndexingConfigurationCommand,
} from '@aws-sdk/client-iot';
import {
  DeleteThingShadowCommand,
  IoTDataPlaneClient,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * Shadow fields in fleet search (AWS fleet indexing with REGISTRY_AND_SHADOW, Thingstead's default) through
 * `@aws-sdk/client-iot` SearchIndex: `shadow.reported.*`, `shadow.desired.*`, `shadow.name.<n>.reported.*`,
 * `shadow.hasDelta`, combined with registry fields; each result's `shadow` member (AWS's ThingDocument.shadow,
 * a JSON string); kept current by change events after updates (HTTP and MQTT) and deletes, and rebuilt from
 * the store after a restart; UpdateIndexingConfiguration to REGISTRY takes shadow fields out (registry fields
 * stay), namedShadowIndexingMode OFF and `filter.namedShadowNames` limit the named shadows.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-shadow-index-'));
let p: TestPlatform;
let iot: IoTClient;
let data: IoTDataPlaneClient;

async function start() {
  p = await startTestPlatform({ shadow: { maxUpdatesPerSecondPerThing: 0 } }, { dataDir });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  const credentials = {
    accessKeyId: profile.aws_access_key_id!,
    secretAccessKey: profile.aws_secret_access_key!,
  };
  const c = { endpoint: p.endpoints.http, region: p.config.region, credentials, maxAttempts: 1 };
  iot = new IoTClient(c);
  data = new IoTDataPlaneClient(c);
}
async function stop() {
  iot?.destroy();
  data?.destroy();
  await p?.stop();
}
beforeAll(start);
afterAll(async () => {
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const update = (thingName: string, state: unknown, shadowName?: string) =>
  data.send(
    new UpdateThingShadowCommand({
      thingName,
      ...(shadowName ? { shadowName } : {}),
      payload: new TextEncoder().encode(JSON.stringify({ state })),
    }),
  );

/** The names SearchIndex answers for `queryString`, every page. */
async function search(queryString: string): Promise<string[]> {
  const names: string[] = [];
  let nextToken: string | undefined;
  do {
    const out = await iot.send(new SearchIndexCommand({ queryString, maxResults: 2, nextToken }));
    names.push(...(out.things ?? []).map((t) => t.thingName!));
    nextToken = out.nextToken;
  } while (nextToken);
  return names.sort();
}

/** Poll a query until it answers `expected` (the index follows change events). */
const eventually = (query: string, expected: string[]) =>
  waitFor(
    async () => JSON.stringify(await search(query)) === JSON.stringify(expected),
    5000,
    `${query} -> ${expected.join(',')}`,
  ).then(
    () => undefined,
    async (err: Error) => {
      expect(await search(query), err.message).toEqual(expected);
    },
  );

/** The `shadow` member SearchIndex gives a thing, parsed. */
async function shadowOf(thingName: string): Promise<any> {
  const out = await iot.send(new SearchIndexCommand({ queryString: `thingName:${thingName}` }));
  expect(out.things).toHaveLength(1);
  const s = out.things![0]!.shadow;
  if (s !== undefined) expect(typeof s).toBe('string');
  return s === undefined ? undefined : JSON.parse(s);
}

describe('shadow fields in SearchIndex', () => {
  beforeAll(async () => {
    await iot.send(new CreateThingTypeCommand({ thingTypeName: 'thermostat' }));
    const things: Array<[string, Record<string, string>, string?]> = [
      ['th-hot', { room: 'kitchen' }, 'thermostat'],
      ['th-cold', { room: 'kitchen' }, 'thermostat'],
      ['th-lab', { room: 'lab' }],
      ['th-none', { room: 'kitchen' }, 'thermostat'],
      ['th-drift', { room: 'lab' }, 'thermostat'],
    ];
    for (const [thingName, attributes, thingTypeName] of things)
      await iot.send(
        new CreateThingCommand({
          thingName,
          attributePayload: { attributes },
          ...(thingTypeName ? { thingTypeName } : {}),
        }),
      );
    await update('th-hot', { desired: { mode: 'eco' }, reported: { temp: 25, mode: 'eco' } });
    await update('th-cold', { desired: { mode: 'normal' }, reported: { temp: 15, mode: 'normal' } });
    await update('th-lab', { reported: { temp: 22.5, fw: '0.9' } });
    await update('th-lab', { reported: { fw: '1.2.7' } }, 'config');
    await update('th-drift', {
      desired: { mode: 'eco', fan: { speed: 3 } },
      reported: { temp: 19, mode: 'eco' },
    });
    await update('th-drift', { reported: { fw: '1.3.0' } }, 'config');
    // A shadow of a thing that is not in the registry is never a search result.
    await update('not-registered', { reported: { temp: 99 } });
    await eventually('shadow.reported.temp > 20', ['th-hot', 'th-lab']);
  });

  test('range, value, wildcard and boolean queries on classic and named shadows', async () => {
    expect(await search('shadow.reported.temp > 20')).toEqual(['th-hot', 'th-lab']);
    expect(await search('shadow.reported.temp:[15 TO 20]')).toEqual(['th-cold', 'th-drift']);
    expect(await search('shadow.reported.temp < 15')).toEqual([]);
    expect(await search('shadow.desired.mode:eco')).toEqual(['th-drift', 'th-hot']);
    expect(await search('shadow.desired.fan.speed:3')).toEqual(['th-drift']);
    expect(await search('shadow.reported.fw:*')).toEqual(['th-lab']);
    expect(await search('shadow.name.config.reported.fw:1.2*')).toEqual(['th-lab']);
    expect(await search('shadow.name.config.reported.fw:1.*')).toEqual(['th-drift', 'th-lab']);
    // The classic shadow's fw (0.9) is not the named shadow's.
    expect(await search('shadow.reported.fw:1.2*')).toEqual([]);
    expect(await search('shadow.hasDelta:true')).toEqual(['th-drift']);
    expect(await search('shadow.delta.fan.speed:3')).toEqual(['th-drift']);
    expect(await search('shadow.version:1')).toEqual(['th-cold', 'th-drift', 'th-hot', 'th-lab']);
    expect(await search('shadow.name.config.version:1')).toEqual(['th-drift', 'th-lab']);
  });

  test('combined with registry fields', async () => {
    expect(await search('attributes.room:kitchen AND shadow.reported.temp > 20')).toEqual(['th-hot']);
    expect(await search('thingTypeName:thermostat AND shadow.desired.mode:eco')).toEqual([
      'th-drift',
      'th-hot',
    ]);
    expect(await search('attributes.room:lab AND shadow.name.config.reported.fw:1.3*')).toEqual(['th-drift']);
    expect(await search('thingTypeName:thermostat AND NOT shadow.hasDelta:true')).toEqual([
      'th-cold',
      'th-hot',
      'th-none',
    ]);
    expect(
      await search('attributes.room:kitchen AND (shadow.reported.temp < 20 OR shadow.desired.mode:eco)'),
    ).toEqual(['th-cold', 'th-hot']);
  });

  test("each result carries AWS's `shadow` member: a JSON string of the shadow's state", async () => {
    expect(await shadowOf('th-hot')).toEqual({
      desired: { mode: 'eco' },
      reported: { temp: 25, mode: 'eco' },
      version: 1,
      hasDelta: false,
    });
    expect(await shadowOf('th-lab')).toEqual({
      reported: { temp: 22.5, fw: '0.9' },
      version: 1,
      hasDelta: false,
      name: { config: { reported: { fw: '1.2.7' }, version: 1, hasDelta: false } },
    });
    expect((await shadowOf('th-drift')).hasDelta).toBe(true);
    // No shadow: no member (the SDK leaves it undefined).
    expect(await shadowOf('th-none')).toBeUndefined();
    const all = await iot.send(new SearchIndexCommand({ queryString: 'attributes.room:kitchen' }));
    expect(all.things!.map((t) => [t.thingName, t.shadow === undefined])).toEqual([
      ['th-cold', false],
      ['th-hot', false],
      ['th-none', true],
    ]);
  });

  test('a dynamic thing group on a shadow field follows the shadow: members join and leave as devices report', async () => {
    await iot.send(
      new CreateDynamicThingGroupCommand({
        thingGroupName: 'overheating',
        queryString: 'thingTypeName:thermostat AND shadow.reported.temp > 40',
      }),
    );
    const members = async () =>
      (
        (await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'overheating' }))).things ?? []
      ).sort();
    const groupsOf = async (thingName: string) =>
      (await iot.send(new ListThingGroupsForThingCommand({ thingName }))).thingGroups?.map(
        (g) => g.groupName,
      );
    expect(await members()).toEqual([]);
    await update('th-hot', { reported: { temp: 45 } });
    await update('th-lab', { reported: { temp: 50 } }); // not a thermostat: never a member
    await waitFor(async () => (await members()).length === 1, 5000, 'th-hot joins');
    expect(await members()).toEqual(['th-hot']);
    expect(await groupsOf('th-hot')).toEqual(['overheating']);
    await update('th-hot', { reported: { temp: 21 } });
    await waitFor(async () => (await members()).length === 0, 5000, 'th-hot leaves');
    expect(await groupsOf('th-hot')).toEqual([]);
    // Back to the values the later tests expect (versions still move: they are not asserted there).
    await update('th-hot', { reported: { temp: 25 } });
    await update('th-lab', { reported: { temp: 22.5 } });
    await eventually('shadow.reported.temp > 20', ['th-hot', 'th-lab']);
  });

  test('kept current after updates over HTTP and MQTT, shadow deletes and thing deletes', async () => {
    await update('th-cold', { reported: { temp: 30 } });
    await eventually('shadow.reported.temp > 20', ['th-cold', 'th-hot', 'th-lab']);
    expect((await shadowOf('th-cold')).version).toBe(2);

    // Over MQTT, as a device does it: desired now differs, so th-cold has a delta.
    const dev = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'th-cold', protocolVersion: 5 });
    try {
      await dev.publishAsync(
        '$aws/things/th-cold/shadow/update',
        JSON.stringify({ state: { desired: { mode: 'eco' } } }),
        {
          qos: 1,
        },
      );
      await eventually('shadow.hasDelta:true', ['th-cold', 'th-drift']);
      expect(await search('shadow.desired.mode:eco')).toEqual(['th-cold', 'th-drift', 'th-hot']);
      // The device catches up: the delta goes.
      await dev.publishAsync(
        '$aws/things/th-cold/shadow/update',
        JSON.stringify({ state: { reported: { mode: 'eco' } } }),
        {
          qos: 1,
        },
      );
      await eventually('shadow.hasDelta:true', ['th-drift']);
    } finally {
      await dev.endAsync();
    }

    // A removed field leaves the index.
    await update('th-lab', { reported: { temp: null } });
    await eventually('shadow.reported.temp > 20', ['th-cold', 'th-hot']);
    expect(await search('shadow.reported.fw:0.9')).toEqual(['th-lab']);

    // Deleting a shadow takes its fields out; the other shadows of the thing stay.
    await data.send(new DeleteThingShadowCommand({ thingName: 'th-hot' }));
    await eventually('shadow.reported.temp > 20', ['th-cold']);
    expect(await search('shadow.desired.mode:eco')).toEqual(['th-cold', 'th-drift']);
    expect(await shadowOf('th-hot')).toBeUndefined();
    await data.send(new DeleteThingShadowCommand({ thingName: 'th-lab', shadowName: 'config' }));
    await eventually('shadow.name.config.reported.fw:1.*', ['th-drift']);
    expect((await shadowOf('th-lab')).name).toBeUndefined();

    // Deleting the thing deletes its shadows: recreated, the thing has none.
    await iot.send(new DeleteThingCommand({ thingName: 'th-drift' }));
    await eventually('shadow.name.config.reported.fw:1.*', []);
    await iot.send(new CreateThingCommand({ thingName: 'th-drift' }));
    await waitFor(async () => (await p.shadows.service.peek('th-drift', 'config')) === undefined);
    expect(await search('shadow.hasDelta:true OR shadow.name.config.version:*')).toEqual([]);
    expect(await shadowOf('th-drift')).toBeUndefined();
  });

  test('after a restart the index is rebuilt from the store', async () => {
    const queries = [
      'shadow.reported.temp > 20',
      'shadow.desired.mode:eco',
      'shadow.reported.fw:*',
      'shadow.version:*',
      'attributes.room:kitchen AND shadow.reported.temp:*',
    ];
    const before = await Promise.all(queries.map(search));
    expect(before).toEqual([['th-cold'], ['th-cold'], ['th-lab'], ['th-cold', 'th-lab'], ['th-cold']]);
    const shadowBefore = await shadowOf('th-cold');
    await stop();
    await start();
    expect(await Promise.all(queries.map(search))).toEqual(before);
    expect(await shadowOf('th-cold')).toEqual(shadowBefore);
    // And it still follows changes.
    await update('th-lab', { reported: { temp: 40 } });
    await eventually('shadow.reported.temp > 20', ['th-cold', 'th-lab']);
  });

  test('UpdateIndexingConfiguration: REGISTRY turns shadow fields off, named shadow settings limit them', async () => {
    await update('th-lab', { reported: { fw: '2.0' } }, 'config');
    await update('th-lab', { reported: { fw: '2.0' } }, 'ota');
    await eventually('shadow.name.ota.reported.fw:2.0', ['th-lab']);

    await iot.send(
      new UpdateIndexingConfigurationCommand({
        thingIndexingConfiguration: {
          thingIndexingMode: 'REGISTRY',
          thingConnectivityIndexingMode: 'STATUS',
        },
      }),
    );
    await eventually('shadow.reported.temp > 20', []);
    expect(await search('shadow.version:*')).toEqual([]);
    expect(await search('shadow.name.config.reported.fw:2.0')).toEqual([]);
    expect(await search('shadow.hasDelta:true')).toEqual([]);
    expect(await shadowOf('th-lab')).toBeUndefined();
    // Registry fields stay searchable.
    expect(await search('attributes.room:lab')).toEqual(['th-lab']);
    expect(await search('thingTypeName:thermostat')).toEqual(['th-cold', 'th-hot', 'th-none']);
    // A change made while shadow indexing is off is there when it comes back on.
    await update('th-cold', { reported: { temp: 5 } });

    await iot.send(
      new UpdateIndexingConfigurationCommand({
        thingIndexingConfiguration: {
          thingIndexingMode: 'REGISTRY_AND_SHADOW',
          namedShadowIndexingMode: 'OFF',
        },
      }),
    );
    await eventually('shadow.reported.temp > 20', ['th-lab']);
    expect(await search('shadow.reported.temp < 10')).toEqual(['th-cold']);
    expect(await search('shadow.name.config.reported.fw:2.0')).toEqual([]);
    expect((await shadowOf('th-lab')).name).toBeUndefined();

    await iot.send(
      new UpdateIndexingConfigurationCommand({
        thingIndexingConfiguration: {
          thingIndexingMode: 'REGISTRY_AND_SHADOW',
          namedShadowIndexingMode: 'ON',
          filter: { namedShadowNames: ['ota'] },
        },
      }),
    );
    await eventually('shadow.name.ota.reported.fw:2.0', ['th-lab']);
    expect(await search('shadow.name.config.reported.fw:2.0')).toEqual([]);
    expect(Object.keys((await shadowOf('th-lab')).name)).toEqual(['ota']);
  });
});
