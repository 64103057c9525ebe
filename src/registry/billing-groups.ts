import { randomUUID } from 'node:crypto';
import { E } from '../errors/index.js';
import { arn, decodeToken, nameFromArnOrName, page, type RegistryContext } from './context.js';
import type { BillingGroupRecord } from './store.js';

/**
 * Billing groups (reference §3.1; AWS IoT Developer Guide "Billing groups"): flat (no hierarchy), a thing
 * is in at most one, recorded on the thing itself (adding or removing bumps the thing's version).
 */

export function billingGroupOps(ctx: RegistryContext) {
  const { store } = ctx;
  return {
    async createBillingGroup(input: {
      billingGroupName: string;
      billingGroupProperties?: { billingGroupDescription?: string };
      tags?: Array<{ Key: string; Value?: string }>;
    }) {
      const description = input.billingGroupProperties?.billingGroupDescription ?? null;
      const out = (b: BillingGroupRecord) => ({
        billingGroupName: b.name,
        billingGroupArn: arn(ctx, 'billinggroup', b.name),
        billingGroupId: b.id,
      });
      const existing = await store.getBillingGroup(input.billingGroupName);
      if (existing) {
        if (existing.description === description) return out(existing);
        throw E.BillingGroupConflict(
          { billingGroupName: existing.name },
          { resourceId: existing.id, resourceArn: arn(ctx, 'billinggroup', existing.name) },
        );
      }
      ctx.tags?.check(input.tags);
      const b: BillingGroupRecord = {
        name: input.billingGroupName,
        id: randomUUID(),
        description,
        version: 1,
        createdAt: Date.now(),
      };
      if (!(await store.insertBillingGroup(b)))
        throw E.BillingGroupAlreadyExists({ billingGroupName: b.name });
      await ctx.tags?.add(arn(ctx, 'billinggroup', b.name), input.tags);
      return out(b);
    },

    async describeBillingGroup(input: { billingGroupName: string }) {
      const b = await store.getBillingGroup(input.billingGroupName);
      if (!b) throw E.BillingGroupNotFound({ billingGroupName: input.billingGroupName });
      return {
        billingGroupName: b.name,
        billingGroupId: b.id,
        billingGroupArn: arn(ctx, 'billinggroup', b.name),
        version: b.version,
        billingGroupProperties: { billingGroupDescription: b.description ?? undefined },
        billingGroupMetadata: { creationDate: new Date(b.createdAt) },
      };
    },

    async updateBillingGroup(input: {
      billingGroupName: string;
      billingGroupProperties: { billingGroupDescription?: string };
      expectedVersion?: number;
    }) {
      const b = await store.getBillingGroup(input.billingGroupName);
      if (!b) throw E.BillingGroupNotFound({ billingGroupName: input.billingGroupName });
      if (input.expectedVersion !== undefined && input.expectedVersion !== b.version)
        throw E.BillingGroupVersionMismatch({
          billingGroupName: b.name,
          expected: input.expectedVersion,
          current: b.version,
        });
      const next = {
        ...b,
        description: input.billingGroupProperties.billingGroupDescription ?? b.description,
        version: b.version + 1,
      };
      if (!(await store.updateBillingGroup(next, b.version)))
        throw E.BillingGroupChanged({ billingGroupName: b.name });
      return { version: next.version };
    },

    async deleteBillingGroup(input: { billingGroupName: string; expectedVersion?: number }) {
      const b = await store.getBillingGroup(input.billingGroupName);
      if (!b) return {};
      if (input.expectedVersion !== undefined && input.expectedVersion !== b.version)
        throw E.BillingGroupVersionMismatch({
          billingGroupName: b.name,
          expected: input.expectedVersion,
          current: b.version,
        });
      await store.deleteBillingGroup(b.name);
      await ctx.tags?.removeAll(arn(ctx, 'billinggroup', b.name));
      return {};
    },

    async listBillingGroups(input: { nextToken?: string; maxResults?: number; namePrefixFilter?: string }) {
      const limit = input.maxResults ?? 50;
      const rows = await store.listBillingGroups({
        after: decodeToken(input.nextToken),
        limit: limit + 1,
        namePrefix: input.namePrefixFilter,
      });
      const p = page(rows, limit, (b) => b.name);
      return {
        billingGroups: p.items.map((b) => ({
          groupName: b.name,
          groupArn: arn(ctx, 'billinggroup', b.name),
        })),
        nextToken: p.nextToken,
      };
    },

    async setBillingGroup(
      input: { billingGroupName?: string; billingGroupArn?: string; thingName?: string; thingArn?: string },
      add: boolean,
    ) {
      const group = nameFromArnOrName(input.billingGroupName ?? input.billingGroupArn, 'billinggroup');
      const thingName = nameFromArnOrName(input.thingName ?? input.thingArn, 'thing');
      if (!group) throw E.BillingGroupTarget();
      if (!thingName) throw E.ThingTarget();
      if (!(await store.getBillingGroup(group))) throw E.BillingGroupNotFound({ billingGroupName: group });
      for (let attempt = 0; attempt < 5; attempt++) {
        const t = await store.getThing(thingName);
        if (!t) throw E.ThingNotFound({ thingName: thingName });
        if (!add && t.billingGroup !== group) return {};
        const next = { ...t, billingGroup: add ? group : null, version: t.version + 1 };
        if (await store.updateThing(next, t.version)) return {};
      }
      throw E.ThingChangedRetry({ thingName });
    },

    async listThingsInBillingGroup(input: {
      billingGroupName: string;
      nextToken?: string;
      maxResults?: number;
    }) {
      if (!(await store.getBillingGroup(input.billingGroupName)))
        throw E.BillingGroupNotFound({ billingGroupName: input.billingGroupName });
      const limit = input.maxResults ?? 25;
      const rows = await store.listThings({
        after: decodeToken(input.nextToken),
        limit: limit + 1,
        billingGroup: input.billingGroupName,
      });
      const p = page(rows, limit, (t) => t.name);
      return { things: p.items.map((t) => t.name), nextToken: p.nextToken };
    },
  };
}
