import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createPostgresChannel, type ChangeChannel } from '../../src/events/index.js';
import { createRegistry, type ThingRegistry } from '../../src/registry/index.js';
import { openDatabase, type Database, type PostgresDatabase } from '../../src/store/index.js';
import { waitFor } from '../helpers/platform.js';
import { freshPgSchema, postgresUrl } from '../compat/harness.js';

/**
 * Two nodes on one PostgreSQL (DESIGN.md "Growing past one machine"): each keeps its own in-memory fleet
 * index, and the other node's change events (PostgreSQL LISTEN/NOTIFY) bring its changes into it.
 */

const pg = await postgresUrl();

describe.skipIf(!pg)('registry on two nodes sharing PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  const dbs: Database[] = [];
  const channels: ChangeChannel[] = [];
  let a: ThingRegistry;
  let b: ThingRegistry;
  beforeAll(async () => {
    schema = await freshPgSchema(pg!);
    for (let i = 0; i < 2; i++)
      dbs.push(await openDatabase({ dataDir: '/nonexistent', databaseUrl: schema.url }));
    for (const db of dbs) channels.push(await createPostgresChannel({ db: db as PostgresDatabase }));
    const opts = { region: 'us-east-1', accountId: '123456789012' };
    a = await createRegistry({ db: dbs[0]!, events: channels[0], ...opts });
    b = await createRegistry({ db: dbs[1]!, events: channels[1], ...opts });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const c of channels) await c.close();
    for (const db of dbs) await db.close();
    await schema?.drop();
  });

  const searchB = (q: string) => b.searchIndex({ queryString: q }).things.map((t) => t.thingName);

  test('things created, updated, grouped and deleted on node A appear in node B search', async () => {
    await a.createThing({ thingName: 'n1', attributePayload: { attributes: { fw: '1' } } });
    await waitFor(() => searchB('attributes.fw:1').includes('n1'), 5000, 'n1 on node B');
    await a.updateThing({ thingName: 'n1', attributePayload: { attributes: { fw: '2' } } });
    await waitFor(() => searchB('attributes.fw:2').includes('n1'), 5000, 'n1 update on node B');
    expect(searchB('attributes.fw:1')).toEqual([]);
    await a.createThingGroup({ thingGroupName: 'lab' });
    await a.addThingToThingGroup({ thingGroupName: 'lab', thingName: 'n1' });
    await waitFor(() => searchB('thingGroupNames:lab').includes('n1'), 5000, 'membership on node B');
    await a.createDynamicThingGroup({ thingGroupName: 'fw2', queryString: 'attributes.fw:2' });
    await waitFor(
      async () => (await b.listThingsInThingGroup({ thingGroupName: 'fw2' })).things.includes('n1'),
      5000,
      'dynamic group on B',
    );
    await a.deleteThingGroup({ thingGroupName: 'lab' });
    await waitFor(() => !searchB('thingGroupNames:lab').includes('n1'), 5000, 'group deletion on node B');
    await a.deleteThing({ thingName: 'n1' });
    await waitFor(() => searchB('thingName:n1').length === 0, 5000, 'n1 deletion on node B');
  });

  test('event configuration changed on node A is used by node B', async () => {
    await a.updateEventConfigurations({ eventConfigurations: { THING: { Enabled: true } } });
    await waitFor(
      () => b.describeEventConfigurations().eventConfigurations.THING?.Enabled === true,
      5000,
      'events on B',
    );
  });
});
