import { E } from '../errors/index.js';
import { decodeToken, page, type RegistryContext } from './context.js';

/**
 * Principals attached to things (reference §3.2): a certificate ARN (or other principal) is attached as
 * NON_EXCLUSIVE_THING (to any number of things) or EXCLUSIVE_THING (to this thing only). Attaching twice
 * is idempotent; a thing with principals cannot be deleted (things.ts).
 */

export function principalOps(ctx: RegistryContext) {
  const { store } = ctx;
  return {
    async attachThingPrincipal(input: { thingName: string; principal: string; thingPrincipalType?: string }) {
      if (!(await store.getThing(input.thingName))) throw E.ThingNotFound({ thingName: input.thingName });
      const type = input.thingPrincipalType ?? 'NON_EXCLUSIVE_THING';
      const others = (await store.thingsOfPrincipal(input.principal, { limit: 1000 })).filter(
        (o) => o.thing !== input.thingName,
      );
      if (others.length && (type === 'EXCLUSIVE_THING' || others.some((o) => o.type === 'EXCLUSIVE_THING')))
        throw (type === 'EXCLUSIVE_THING' ? E.PrincipalAttachedElsewhere : E.PrincipalAttachedExclusively)({
          principal: input.principal,
          thingName: others[0]!.thing,
        });
      await store.attachPrincipal(input.thingName, input.principal, type);
      return {};
    },

    async detachThingPrincipal(input: { thingName: string; principal: string }) {
      if (!(await store.getThing(input.thingName))) throw E.ThingNotFound({ thingName: input.thingName });
      await store.detachPrincipal(input.thingName, input.principal);
      return {};
    },

    async listThingPrincipals(
      input: { thingName: string; nextToken?: string; maxResults?: number },
      v2 = false,
    ) {
      if (!(await store.getThing(input.thingName))) throw E.ThingNotFound({ thingName: input.thingName });
      const limit = input.maxResults ?? 25;
      const rows = await store.principalsOfThing(input.thingName, {
        after: decodeToken(input.nextToken),
        limit: limit + 1,
      });
      const p = page(rows, limit, (r) => r.principal);
      return v2
        ? {
            thingPrincipalObjects: p.items.map((r) => ({
              principal: r.principal,
              thingPrincipalType: r.type,
            })),
            nextToken: p.nextToken,
          }
        : { principals: p.items.map((r) => r.principal), nextToken: p.nextToken };
    },

    async listPrincipalThings(input: { principal: string; nextToken?: string; maxResults?: number }) {
      const limit = input.maxResults ?? 25;
      const rows = await store.thingsOfPrincipal(input.principal, {
        after: decodeToken(input.nextToken),
        limit: limit + 1,
      });
      const p = page(rows, limit, (r) => r.thing);
      return { things: p.items.map((r) => r.thing), nextToken: p.nextToken };
    },
  };
}
