/**
 * What jobs need of the registry, read through its service (never its tables): whether a thing exists, the
 * things a target reaches (a thing ARN: that thing; a thing-group ARN: its members and its child groups'
 * members, dynamic groups included), and the groups a thing is in now (with their ancestors), which
 * decides whether a continuous job still reaches it.
 */
import { E, isThingsteadError } from '../errors/index.js';
import type { ThingRegistry } from '../registry/index.js';

export type TargetRef = {
  readonly kind: 'thing' | 'thinggroup';
  readonly name: string;
  readonly arn: string;
};

const ARN = /^arn:aws:iot:[^:]*:[^:]*:(thing|thinggroup)\/([a-zA-Z0-9:_-]{1,128})$/;

/** Parse a target ARN; throws InvalidRequest for anything but a thing or thing-group ARN. */
export function parseTarget(arn: string): TargetRef {
  const m = ARN.exec(arn);
  if (!m) throw E.JobTargetInvalid({ target: arn });
  return { kind: m[1] as TargetRef['kind'], name: m[2]!, arn };
}

export interface TargetResolver {
  thingExists(thingName: string): Promise<boolean>;
  /** Things a target reaches now, in name order. Throws ResourceNotFound for a missing thing or group. */
  thingsOf(target: TargetRef): Promise<string[]>;
  /** Names of the groups the thing is in now (static and dynamic) and every ancestor of them. */
  groupsOf(thingName: string): Promise<Set<string>>;
}

type RegistryView = Pick<
  ThingRegistry,
  'describeThing' | 'describeThingGroup' | 'listThingsInThingGroup' | 'listThingGroupsForThing'
>;

const notFound = (err: unknown) => isThingsteadError(err) && err.code === 'ResourceNotFound';

export function registryTargets(registry: RegistryView): TargetResolver {
  return {
    async thingExists(thingName) {
      try {
        await registry.describeThing({ thingName });
        return true;
      } catch (err) {
        if (notFound(err)) return false;
        throw err;
      }
    },

    async thingsOf(target) {
      if (target.kind === 'thing') {
        if (!(await this.thingExists(target.name))) throw E.JobTargetNotFound({ target: target.arn });
        return [target.name];
      }
      try {
        await registry.describeThingGroup({ thingGroupName: target.name });
      } catch (err) {
        if (notFound(err)) throw E.JobTargetNotFound({ target: target.arn });
        throw err;
      }
      const things: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await registry.listThingsInThingGroup({
          thingGroupName: target.name,
          recursive: true,
          maxResults: 250,
          ...(nextToken ? { nextToken } : {}),
        });
        things.push(...page.things);
        nextToken = page.nextToken;
      } while (nextToken);
      return things;
    },

    async groupsOf(thingName) {
      const out = new Set<string>();
      let nextToken: string | undefined;
      try {
        do {
          const page = await registry.listThingGroupsForThing({
            thingName,
            maxResults: 250,
            ...(nextToken ? { nextToken } : {}),
          });
          for (const g of page.thingGroups) out.add(g.groupName);
          nextToken = page.nextToken;
        } while (nextToken);
      } catch (err) {
        if (notFound(err)) return out; // a deleted thing is in no group
        throw err;
      }
      for (const g of [...out]) {
        const d = await registry.describeThingGroup({ thingGroupName: g }).catch(() => null);
        for (const parent of d?.thingGroupMetadata.rootToParentThingGroups ?? []) out.add(parent.groupName);
      }
      return out;
    },
  };
}
