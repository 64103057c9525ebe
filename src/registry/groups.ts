import { randomUUID } from 'node:crypto';
import { E } from '../errors/index.js';
import {
  LIMITS,
  applyAttributes,
  arn,
  decodeToken,
  nameFromArnOrName,
  page,
  sameAttributes,
  type RegistryContext,
} from './context.js';
import {
  checkDynamicQuery,
  compileDynamic,
  dynamicGroupsOf,
  newDynamicQuery,
  thingsInDynamicGroup,
  updatedDynamicQuery,
} from './dynamic-groups.js';
import type { ThingGroupRecord } from './store.js';

/**
 * Thing groups (reference §3.1; AWS IoT Developer Guide "Thing groups"): static groups nested through a
 * parent (up to 7 levels, 100 children each) with explicit memberships (10 groups per thing). A dynamic
 * group (dynamic-groups.ts) is a thing group with a query instead of members: `groupCore` serves both
 * kinds, `groupOps` are the thing-group operations, which also describe, list and list the members of
 * dynamic groups.
 */

export type GroupCore = ReturnType<typeof groupCore>;

type GroupProps = {
  thingGroupDescription?: string;
  attributePayload?: { attributes?: Record<string, string>; merge?: boolean };
};

/** Create, update and delete of a thing group of either kind, and the hierarchy they check. */
export function groupCore(ctx: RegistryContext) {
  const { store, index, events } = ctx;

  async function mustGroup(name: string): Promise<ThingGroupRecord> {
    const g = await store.getGroup(name);
    if (!g) throw E.ThingGroupNotFound({ thingGroupName: name });
    return g;
  }

  /** Ancestors from the root down to the direct parent. */
  async function rootToParent(g: ThingGroupRecord): Promise<ThingGroupRecord[]> {
    const chain: ThingGroupRecord[] = [];
    let parent = g.parentName;
    while (parent && chain.length <= LIMITS.groupDepth) {
      const p = await store.getGroup(parent);
      if (!p) break;
      chain.unshift(p);
      parent = p.parentName;
    }
    return chain;
  }

  /** All descendants of a static group (breadth first). */
  async function descendants(name: string): Promise<string[]> {
    const all = await store.allGroups();
    const children = new Map<string, string[]>();
    for (const g of all)
      if (g.parentName) children.set(g.parentName, [...(children.get(g.parentName) ?? []), g.name]);
    const out: string[] = [];
    const queue = [name];
    while (queue.length) {
      const n = queue.shift()!;
      for (const c of children.get(n) ?? []) {
        out.push(c);
        queue.push(c);
      }
    }
    return out;
  }

  const groupEvent = async (g: ThingGroupRecord, operation: 'CREATED' | 'UPDATED' | 'DELETED') => {
    if (!events.enabled('THING_GROUP')) return;
    const chain = await rootToParent(g);
    const parent = chain[chain.length - 1];
    events.emit('THING_GROUP', `$aws/events/thingGroup/${g.name}/${operation.toLowerCase()}`, {
      operation,
      thingGroupId: g.id,
      thingGroupName: g.name,
      versionNumber: g.version,
      parentGroupName: g.parentName,
      parentGroupId: parent?.id ?? null,
      description: g.description,
      rootToParentThingGroups: chain.map((c) => ({
        groupArn: arn(ctx, 'thinggroup', c.name),
        groupId: c.id,
      })),
      attributes: g.attributes,
      dynamicGroupMappingId: null,
    });
  };

  const hierarchyEvent = (
    parent: ThingGroupRecord,
    child: ThingGroupRecord,
    operation: 'ADDED' | 'REMOVED',
  ) =>
    events.emit(
      'THING_GROUP_HIERARCHY',
      `$aws/events/thingGroupHierarchy/thingGroup/${parent.name}/childThingGroup/${child.name}/${operation.toLowerCase()}`,
      {
        operation,
        thingGroupId: parent.id,
        thingGroupName: parent.name,
        childGroupId: child.id,
        childGroupName: child.name,
      },
    );

  function checkGroupAttributes(attrs: Record<string, string>, name: string) {
    const n = Object.keys(attrs).length;
    if (n > LIMITS.attributesPerGroup)
      throw E.ThingGroupAttributesLimit({ thingGroupName: name, count: n, max: LIMITS.attributesPerGroup });
  }

  async function createGroup(input: {
    thingGroupName: string;
    parentGroupName?: string;
    thingGroupProperties?: GroupProps;
    tags?: Array<{ Key: string; Value?: string }>;
    dynamic?: { queryString: string; indexName?: string; queryVersion?: string };
  }) {
    const attributes = applyAttributes(
      {},
      { attributes: input.thingGroupProperties?.attributePayload?.attributes ?? {} },
    );
    checkGroupAttributes(attributes, input.thingGroupName);
    const description = input.thingGroupProperties?.thingGroupDescription ?? null;
    const dynamic = input.dynamic ? newDynamicQuery(input.dynamic) : null;
    const out = (g: ThingGroupRecord) => ({
      thingGroupName: g.name,
      thingGroupArn: arn(ctx, 'thinggroup', g.name),
      thingGroupId: g.id,
      ...(g.dynamic ?? {}),
    });
    const existing = await store.getGroup(input.thingGroupName);
    if (existing) {
      const same =
        existing.parentName === (input.parentGroupName ?? null) &&
        existing.description === description &&
        sameAttributes(existing.attributes, attributes) &&
        JSON.stringify(existing.dynamic) === JSON.stringify(dynamic);
      if (same) return out(existing);
      throw E.ThingGroupConflict(
        { thingGroupName: input.thingGroupName },
        { resourceId: existing.id, resourceArn: arn(ctx, 'thinggroup', existing.name) },
      );
    }
    if (dynamic) checkDynamicQuery(ctx, dynamic); // InvalidQueryException before anything is stored
    ctx.tags?.check(input.tags);
    let parent: ThingGroupRecord | undefined;
    if (input.parentGroupName !== undefined) {
      parent = await mustGroup(input.parentGroupName);
      if (parent.dynamic) throw E.DynamicGroupAsParent({ thingGroupName: parent.name });
      const depth = (await rootToParent(parent)).length + 2;
      if (depth > LIMITS.groupDepth)
        throw E.ThingGroupDepth({ thingGroupName: input.thingGroupName, depth, max: LIMITS.groupDepth });
      if ((await store.countChildren(parent.name)) >= LIMITS.childGroups)
        throw E.ThingGroupChildLimit({ thingGroupName: parent.name, max: LIMITS.childGroups });
    }
    const g: ThingGroupRecord = {
      name: input.thingGroupName,
      id: randomUUID(),
      parentName: input.parentGroupName ?? null,
      description,
      attributes,
      version: 1,
      createdAt: Date.now(),
      dynamic,
      tags: input.tags ?? [],
    };
    if (!(await store.insertGroup(g))) throw E.ThingGroupAlreadyExists({ thingGroupName: g.name });
    await ctx.tags?.add(arn(ctx, 'thinggroup', g.name), input.tags);
    if (dynamic) ctx.dynamic.set(g.name, compileDynamic(ctx, dynamic.queryString));
    await groupEvent(g, 'CREATED');
    if (parent) hierarchyEvent(parent, g, 'ADDED');
    return out(g);
  }

  async function updateGroup(
    input: {
      thingGroupName: string;
      thingGroupProperties?: GroupProps;
      expectedVersion?: number;
      queryString?: string;
      indexName?: string;
      queryVersion?: string;
    },
    dynamicOp: boolean,
  ) {
    const g = await mustGroup(input.thingGroupName);
    if (dynamicOp && !g.dynamic) throw E.StaticGroupUpdate({ thingGroupName: g.name });
    if (input.expectedVersion !== undefined && input.expectedVersion !== g.version)
      throw E.ThingGroupVersionMismatch({
        thingGroupName: g.name,
        expected: input.expectedVersion,
        current: g.version,
      });
    const attributes = applyAttributes(g.attributes, input.thingGroupProperties?.attributePayload);
    checkGroupAttributes(attributes, g.name);
    let dynamic = g.dynamic;
    if (dynamicOp && dynamic) dynamic = updatedDynamicQuery(ctx, dynamic, input);
    const next: ThingGroupRecord = {
      ...g,
      description:
        input.thingGroupProperties?.thingGroupDescription !== undefined
          ? input.thingGroupProperties.thingGroupDescription
          : g.description,
      attributes,
      dynamic,
      version: g.version + 1,
    };
    if (!(await store.updateGroup(next, g.version))) throw E.ThingGroupChanged({ thingGroupName: g.name });
    if (next.dynamic) ctx.dynamic.set(next.name, compileDynamic(ctx, next.dynamic.queryString));
    await groupEvent(next, 'UPDATED');
    return { version: next.version };
  }

  async function deleteGroup(
    input: { thingGroupName: string; expectedVersion?: number },
    dynamicOp: boolean,
  ) {
    const g = await store.getGroup(input.thingGroupName);
    if (!g) return {};
    if (dynamicOp && !g.dynamic) throw E.StaticGroupDelete({ thingGroupName: g.name });
    if (input.expectedVersion !== undefined && input.expectedVersion !== g.version)
      throw E.ThingGroupVersionMismatch({
        thingGroupName: g.name,
        expected: input.expectedVersion,
        current: g.version,
      });
    if ((await store.countChildren(g.name)) > 0) throw E.ThingGroupHasChildren({ thingGroupName: g.name });
    const parent = g.parentName ? await store.getGroup(g.parentName) : undefined;
    await groupEvent(g, 'DELETED');
    await store.deleteGroup(g.name);
    await ctx.tags?.removeAll(arn(ctx, 'thinggroup', g.name));
    ctx.dynamic.delete(g.name);
    index.dropGroup(g.name);
    if (parent) hierarchyEvent(parent, g, 'REMOVED');
    return {};
  }

  return { mustGroup, rootToParent, descendants, createGroup, updateGroup, deleteGroup };
}

/** The thing-group operations (static groups; describe and the listings serve dynamic groups too). */
export function groupOps(ctx: RegistryContext, core: GroupCore) {
  const { store, index, events } = ctx;
  const { mustGroup, rootToParent, descendants, createGroup, updateGroup, deleteGroup } = core;

  const membershipEvent = (g: ThingGroupRecord, thingName: string, operation: 'ADDED' | 'REMOVED') => {
    const thing = index.get(thingName);
    events.emit(
      'THING_GROUP_MEMBERSHIP',
      `$aws/events/thingGroupMembership/thingGroup/${g.name}/thing/${thingName}/${operation.toLowerCase()}`,
      {
        operation,
        groupArn: arn(ctx, 'thinggroup', g.name),
        groupId: g.id,
        thingArn: arn(ctx, 'thing', thingName),
        thingId: thing?.thingId ?? null,
        membershipId: `${g.id}:${thing?.thingId ?? thingName}`,
      },
    );
  };

  const groupRef = (g: ThingGroupRecord) => ({ groupName: g.name, groupArn: arn(ctx, 'thinggroup', g.name) });

  async function addMember(groupName: string, thingName: string) {
    const g = await mustGroup(groupName);
    if (g.dynamic) throw E.DynamicGroupAdd({ thingGroupName: g.name });
    if (!(await store.getThing(thingName))) throw E.ThingNotFound({ thingName });
    const groups = await store.groupsOfThing(thingName);
    if (groups.includes(g.name)) return;
    if (groups.length >= LIMITS.groupsPerThing)
      throw E.ThingGroupsPerThingLimit({ thingName, count: groups.length });
    if (await store.addMember(g.name, thingName)) {
      index.setGroups(thingName, [...groups, g.name].sort());
      membershipEvent(g, thingName, 'ADDED');
    }
  }

  async function removeMember(groupName: string, thingName: string) {
    const g = await mustGroup(groupName);
    if (g.dynamic) throw E.DynamicGroupRemove({ thingGroupName: g.name });
    if (!(await store.getThing(thingName))) throw E.ThingNotFound({ thingName });
    if (await store.removeMember(g.name, thingName)) {
      index.setGroups(thingName, await store.groupsOfThing(thingName));
      membershipEvent(g, thingName, 'REMOVED');
    }
  }

  const refs = (input: {
    thingGroupName?: string;
    thingGroupArn?: string;
    thingName?: string;
    thingArn?: string;
  }) => {
    const group = nameFromArnOrName(input.thingGroupName ?? input.thingGroupArn, 'thinggroup');
    const thing = nameFromArnOrName(input.thingName ?? input.thingArn, 'thing');
    if (!group) throw E.ThingGroupTarget();
    if (!thing) throw E.ThingTarget();
    return { group, thing };
  };

  return {
    createThingGroup: (input: Parameters<typeof createGroup>[0]) =>
      createGroup({ ...input, dynamic: undefined }),
    async describeThingGroup(input: { thingGroupName: string }) {
      const g = await mustGroup(input.thingGroupName);
      const chain = await rootToParent(g);
      return {
        thingGroupName: g.name,
        thingGroupId: g.id,
        thingGroupArn: arn(ctx, 'thinggroup', g.name),
        version: g.version,
        thingGroupProperties: {
          thingGroupDescription: g.description ?? undefined,
          attributePayload: { attributes: g.attributes },
        },
        thingGroupMetadata: {
          parentGroupName: g.parentName ?? undefined,
          rootToParentThingGroups: chain.length ? chain.map(groupRef) : undefined,
          creationDate: new Date(g.createdAt),
        },
        ...(g.dynamic ? { ...g.dynamic, status: 'ACTIVE' } : {}),
      };
    },

    updateThingGroup: (input: Parameters<typeof updateGroup>[0]) => updateGroup(input, false),
    deleteThingGroup: (input: { thingGroupName: string; expectedVersion?: number }) =>
      deleteGroup(input, false),

    async listThingGroups(input: {
      nextToken?: string;
      maxResults?: number;
      parentGroup?: string;
      namePrefixFilter?: string;
      recursive?: boolean;
    }) {
      const limit = input.maxResults ?? 50;
      const after = decodeToken(input.nextToken);
      let rows: ThingGroupRecord[];
      if (input.parentGroup !== undefined) {
        await mustGroup(input.parentGroup);
        if (input.recursive) {
          const names = await descendants(input.parentGroup);
          rows = await store.listGroups({
            after,
            limit: limit + 1,
            names,
            namePrefix: input.namePrefixFilter,
          });
        } else
          rows = await store.listGroups({
            after,
            limit: limit + 1,
            parent: input.parentGroup,
            namePrefix: input.namePrefixFilter,
          });
      } else rows = await store.listGroups({ after, limit: limit + 1, namePrefix: input.namePrefixFilter });
      const p = page(rows, limit, (g) => g.name);
      return { thingGroups: p.items.map(groupRef), nextToken: p.nextToken };
    },

    async addThingToThingGroup(input: {
      thingGroupName?: string;
      thingGroupArn?: string;
      thingName?: string;
      thingArn?: string;
    }) {
      const r = refs(input);
      await addMember(r.group, r.thing);
      return {};
    },

    async removeThingFromThingGroup(input: {
      thingGroupName?: string;
      thingGroupArn?: string;
      thingName?: string;
      thingArn?: string;
    }) {
      const r = refs(input);
      await removeMember(r.group, r.thing);
      return {};
    },

    async updateThingGroupsForThing(input: {
      thingName?: string;
      thingGroupsToAdd?: string[];
      thingGroupsToRemove?: string[];
    }) {
      if (!input.thingName) throw E.ThingNameRequired();
      for (const g of input.thingGroupsToRemove ?? []) await removeMember(g, input.thingName);
      for (const g of input.thingGroupsToAdd ?? []) await addMember(g, input.thingName);
      return {};
    },

    async listThingsInThingGroup(input: {
      thingGroupName: string;
      recursive?: boolean;
      nextToken?: string;
      maxResults?: number;
    }) {
      const g = await mustGroup(input.thingGroupName);
      const limit = input.maxResults ?? 50;
      const after = decodeToken(input.nextToken);
      if (g.dynamic) return thingsInDynamicGroup(ctx, { ...g, dynamic: g.dynamic }, after, limit);
      const groups = input.recursive ? [g.name, ...(await descendants(g.name))] : [g.name];
      const rows = await store.thingsInGroups(groups, { after, limit: limit + 1 });
      const p = page(rows, limit, (n) => n);
      return { things: p.items, nextToken: p.nextToken };
    },

    async listThingGroupsForThing(input: { thingName: string; nextToken?: string; maxResults?: number }) {
      const thing = index.get(input.thingName) ?? (await store.getThing(input.thingName));
      if (!thing) throw E.ThingNotFound({ thingName: input.thingName });
      const staticGroups = await store.groupsOfThing(input.thingName);
      const doc = index.get(input.thingName);
      const dynamicGroups = doc ? dynamicGroupsOf(ctx, doc) : [];
      const names = [...new Set([...staticGroups, ...dynamicGroups])].sort();
      const after = decodeToken(input.nextToken);
      const limit = input.maxResults ?? 25;
      const rest = after === undefined ? names : names.filter((n) => n > after);
      const p = page(rest, limit, (n) => n);
      return {
        thingGroups: p.items.map((n) => ({ groupName: n, groupArn: arn(ctx, 'thinggroup', n) })),
        nextToken: p.nextToken,
      };
    },
  };
}
