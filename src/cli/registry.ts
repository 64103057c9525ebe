import { Command } from 'commander';
import { encodePath } from '../api/index.js';
import {
  CliError,
  call,
  collect,
  connectionOptions,
  listAll,
  parseAttributes,
  printRecord,
  printTable,
  type CommandFlags,
  withConnection,
} from './connection.js';

/**
 * `thingstead things|types|groups ...`: the everyday registry flows over the AWS-compatible API (SigV4 with
 * the admin credentials written on first start). Readable tables by default, `--json` for scripts.
 */

type Flags = CommandFlags;

const out = (flags: Flags, json: unknown, human: () => void) => {
  if (flags.json) console.log(JSON.stringify(json, null, 2));
  else human();
};

const epoch = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : v);

function thingsCommand(): Command {
  const things = connectionOptions(
    new Command('things').description('Manage things (devices) in the registry.'),
  );
  things
    .command('list')
    .description('List things, optionally filtered by type or attribute.')
    .option('--type <thingTypeName>', 'only things of this type')
    .option(
      '--attribute <name=value>',
      'only things whose attribute has this value (value may end with * for a prefix)',
    )
    .option('--max <n>', 'stop after this many things', '1000')
    .action(
      withConnection(async (conn, flags) => {
        const query: Record<string, string | boolean | undefined> = { thingTypeName: flags.type };
        if (flags.attribute) {
          const [name, value = ''] = String(flags.attribute).split(/=(.*)/s);
          query.attributeName = name;
          if (value.endsWith('*')) {
            query.attributeValue = value.slice(0, -1);
            query.usePrefixAttributeValue = true;
          } else query.attributeValue = value;
        }
        const items = await listAll(conn, '/things', 'things', query, Number(flags.max));
        out(flags, { things: items }, () =>
          printTable(
            items.map((t) => ({
              name: t.thingName,
              type: t.thingTypeName,
              version: t.version,
              attributes: t.attributes,
            })),
          ),
        );
      }),
    );
  things
    .command('create <name>')
    .description('Create a thing (idempotent for the same type and attributes).')
    .option('--type <thingTypeName>', 'thing type')
    .option('--attr <name=value>', 'attribute (repeatable)', collect)
    .option('--billing-group <name>', 'billing group')
    .action(
      withConnection(async (conn, flags, name) => {
        const attributes = parseAttributes(flags.attr);
        const r = await call(conn, 'POST', `/things/${encodePath(name)}`, {
          body: {
            thingTypeName: flags.type,
            attributePayload: attributes ? { attributes } : undefined,
            billingGroupName: flags.billingGroup,
          },
        });
        out(flags, r, () => printRecord(r));
      }),
    );
  things
    .command('describe <name>')
    .description('Show one thing.')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'GET', `/things/${encodePath(name)}`);
        out(flags, r, () => printRecord(r));
      }),
    );
  things
    .command('update <name>')
    .description(
      'Change attributes or type. Attributes replace all existing ones unless --merge; name= removes one.',
    )
    .option('--attr <name=value>', 'attribute (repeatable)', collect)
    .option('--merge', 'merge the given attributes into the existing ones')
    .option('--type <thingTypeName>', 'set the thing type')
    .option('--remove-type', 'remove the thing type')
    .option(
      '--expected-version <n>',
      'fail with VersionConflictException unless the thing is at this version',
    )
    .action(
      withConnection(async (conn, flags, name) => {
        const attributes = parseAttributes(flags.attr);
        await call(conn, 'PATCH', `/things/${encodePath(name)}`, {
          body: {
            thingTypeName: flags.type,
            removeThingType: flags.removeType ? true : undefined,
            attributePayload: attributes ? { attributes, merge: Boolean(flags.merge) } : undefined,
            expectedVersion: flags.expectedVersion === undefined ? undefined : Number(flags.expectedVersion),
          },
        });
        const r = await call(conn, 'GET', `/things/${encodePath(name)}`);
        out(flags, r, () => printRecord(r));
      }),
    );
  things
    .command('delete <name>')
    .description('Delete a thing (detach its principals first).')
    .option('--expected-version <n>', 'fail unless the thing is at this version')
    .action(
      withConnection(async (conn, flags, name) => {
        await call(conn, 'DELETE', `/things/${encodePath(name)}`, {
          query: { expectedVersion: flags.expectedVersion },
        });
        out(flags, {}, () => console.log(`deleted thing ${name}`));
      }),
    );
  things
    .command('search <query>')
    .description(
      "Fleet search, e.g. 'thingTypeName:sensor AND attributes.temp>30' or 'connectivity.connected:true'.",
    )
    .option('--max <n>', 'stop after this many things', '1000')
    .action(
      withConnection(async (conn, flags, query) => {
        const items: any[] = [];
        let nextToken: string | undefined;
        do {
          const page = await call(conn, 'POST', '/indices/search', {
            body: {
              queryString: query,
              nextToken,
              maxResults: Math.min(500, Number(flags.max) - items.length),
            },
          });
          items.push(...(page.things ?? []));
          nextToken = page.nextToken;
        } while (nextToken && items.length < Number(flags.max));
        out(flags, { things: items }, () =>
          printTable(
            items.map((t) => ({
              name: t.thingName,
              type: t.thingTypeName,
              connected: t.connectivity?.connected,
              groups: (t.thingGroupNames ?? []).join(','),
              attributes: t.attributes,
            })),
          ),
        );
      }),
    );
  things
    .command('groups <name>')
    .description('List the groups (static and dynamic) a thing is in.')
    .action(
      withConnection(async (conn, flags, name) => {
        const items = await listAll(
          conn,
          `/things/${encodePath(name)}/thing-groups`,
          'thingGroups',
          {},
          10_000,
        );
        out(flags, { thingGroups: items }, () => printTable(items, ['groupName', 'groupArn']));
      }),
    );
  return things;
}

function typesCommand(): Command {
  const types = connectionOptions(new Command('types').description('Manage thing types.'));
  types
    .command('list')
    .description('List thing types.')
    .action(
      withConnection(async (conn, flags) => {
        const items = await listAll(conn, '/thing-types', 'thingTypes', {}, 10_000);
        out(flags, { thingTypes: items }, () =>
          printTable(
            items.map((t) => ({
              name: t.thingTypeName,
              deprecated: t.thingTypeMetadata?.deprecated,
              created: epoch(t.thingTypeMetadata?.creationDate),
              description: t.thingTypeProperties?.thingTypeDescription,
            })),
          ),
        );
      }),
    );
  types
    .command('create <name>')
    .description('Create a thing type.')
    .option('--description <text>', 'description')
    .option('--searchable <attrs>', 'comma-separated searchable attribute names (at most 3)')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'POST', `/thing-types/${encodePath(name)}`, {
          body: {
            thingTypeProperties: {
              thingTypeDescription: flags.description,
              searchableAttributes: flags.searchable ? String(flags.searchable).split(',') : undefined,
            },
          },
        });
        out(flags, r, () => printRecord(r));
      }),
    );
  types
    .command('describe <name>')
    .description('Show one thing type.')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'GET', `/thing-types/${encodePath(name)}`);
        out(flags, r, () =>
          printRecord({
            ...r,
            thingTypeMetadata: {
              ...r.thingTypeMetadata,
              creationDate: epoch(r.thingTypeMetadata?.creationDate),
              deprecationDate: epoch(r.thingTypeMetadata?.deprecationDate),
            },
          }),
        );
      }),
    );
  types
    .command('deprecate <name>')
    .description('Deprecate a thing type (no new things may use it); --undo reverses it.')
    .option('--undo', 'undeprecate')
    .action(
      withConnection(async (conn, flags, name) => {
        await call(conn, 'POST', `/thing-types/${encodePath(name)}/deprecate`, {
          body: { undoDeprecate: Boolean(flags.undo) },
        });
        out(flags, {}, () => console.log(`${flags.undo ? 'undeprecated' : 'deprecated'} thing type ${name}`));
      }),
    );
  types
    .command('delete <name>')
    .description('Delete a deprecated thing type that no thing uses.')
    .action(
      withConnection(async (conn, flags, name) => {
        await call(conn, 'DELETE', `/thing-types/${encodePath(name)}`);
        out(flags, {}, () => console.log(`deleted thing type ${name}`));
      }),
    );
  return types;
}

function groupsCommand(): Command {
  const groups = connectionOptions(
    new Command('groups').description('Manage thing groups (static and dynamic).'),
  );
  groups
    .command('list')
    .description('List thing groups.')
    .option('--parent <group>', 'only children of this group')
    .option('--recursive', 'with --parent: all descendants')
    .option('--prefix <text>', 'only names starting with this')
    .action(
      withConnection(async (conn, flags) => {
        const items = await listAll(
          conn,
          '/thing-groups',
          'thingGroups',
          {
            parentGroup: flags.parent,
            recursive: flags.recursive ? true : undefined,
            namePrefixFilter: flags.prefix,
          },
          10_000,
        );
        out(flags, { thingGroups: items }, () => printTable(items, ['groupName', 'groupArn']));
      }),
    );
  groups
    .command('create <name>')
    .description('Create a static thing group.')
    .option('--parent <group>', 'parent group')
    .option('--description <text>', 'description')
    .option('--attr <name=value>', 'attribute (repeatable)', collect)
    .action(
      withConnection(async (conn, flags, name) => {
        const attributes = parseAttributes(flags.attr);
        const r = await call(conn, 'POST', `/thing-groups/${encodePath(name)}`, {
          body: {
            parentGroupName: flags.parent,
            thingGroupProperties: {
              thingGroupDescription: flags.description,
              attributePayload: attributes ? { attributes } : undefined,
            },
          },
        });
        out(flags, r, () => printRecord(r));
      }),
    );
  groups
    .command('create-dynamic <name> <query>')
    .description("Create a dynamic group whose members match a fleet query, e.g. 'attributes.fw<2'.")
    .option('--description <text>', 'description')
    .action(
      withConnection(async (conn, flags, name, query) => {
        const r = await call(conn, 'POST', `/dynamic-thing-groups/${encodePath(name)}`, {
          body: { queryString: query, thingGroupProperties: { thingGroupDescription: flags.description } },
        });
        out(flags, r, () => printRecord(r));
      }),
    );
  groups
    .command('describe <name>')
    .description('Show one thing group.')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'GET', `/thing-groups/${encodePath(name)}`);
        out(flags, r, () =>
          printRecord({
            ...r,
            thingGroupMetadata: {
              ...r.thingGroupMetadata,
              creationDate: epoch(r.thingGroupMetadata?.creationDate),
            },
          }),
        );
      }),
    );
  groups
    .command('delete <name>')
    .description('Delete a thing group (static or dynamic) that has no child groups.')
    .action(
      withConnection(async (conn, flags, name) => {
        const g = await call(conn, 'GET', `/thing-groups/${encodePath(name)}`).catch((err: unknown) => {
          if (err instanceof CliError && err.message.startsWith('ResourceNotFoundException')) return null;
          throw err;
        });
        const base = g?.queryString ? '/dynamic-thing-groups' : '/thing-groups';
        await call(conn, 'DELETE', `${base}/${encodePath(name)}`);
        out(flags, {}, () => console.log(`deleted thing group ${name}`));
      }),
    );
  groups
    .command('add <group> <thing>')
    .description('Add a thing to a static group.')
    .action(
      withConnection(async (conn, flags, group, thing) => {
        await call(conn, 'PUT', '/thing-groups/addThingToThingGroup', {
          body: { thingGroupName: group, thingName: thing },
        });
        out(flags, {}, () => console.log(`added ${thing} to ${group}`));
      }),
    );
  groups
    .command('remove <group> <thing>')
    .description('Remove a thing from a static group.')
    .action(
      withConnection(async (conn, flags, group, thing) => {
        await call(conn, 'PUT', '/thing-groups/removeThingFromThingGroup', {
          body: { thingGroupName: group, thingName: thing },
        });
        out(flags, {}, () => console.log(`removed ${thing} from ${group}`));
      }),
    );
  groups
    .command('things <group>')
    .description('List the things in a group.')
    .option('--recursive', 'include things in child groups')
    .action(
      withConnection(async (conn, flags, group) => {
        const items = await listAll(
          conn,
          `/thing-groups/${encodePath(group)}/things`,
          'things',
          { recursive: flags.recursive ? true : undefined },
          100_000,
        );
        out(flags, { things: items }, () => printTable(items.map((n: string) => ({ thing: n }))));
      }),
    );
  return groups;
}

/** Register `things`, `types` and `groups`. */
export function registerRegistryCommands(program: Command): void {
  program.addCommand(thingsCommand());
  program.addCommand(typesCommand());
  program.addCommand(groupsCommand());
}
