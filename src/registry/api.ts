import { z } from 'zod';
import {
  awsBool,
  awsInt,
  awsString,
  iotOperation,
  maxResults,
  type AwsOperation,
  type AwsRequest,
  type IotOperationOptions,
} from '../api/index.js';
import { tagList } from '../tags/index.js';
import { EVENT_TYPES } from './events.js';
import { indexingInput } from './indexing.js';
import type { ThingRegistry } from './registry.js';

/**
 * The registry's control-plane operations (reference §3.1, §3.2 principals, §3.6 account; routes from the
 * @aws-sdk/client-iot model). One declaration per operation drives routing, input binding and validation;
 * handlers return the AWS response shapes.
 */

// Reference §3.11 and §11.
const NAME = { min: 1, max: 128, pattern: /^[a-zA-Z0-9:_-]+$/, patternText: '[a-zA-Z0-9:_-]+' };
const name = () => awsString(NAME);
const attributeName = awsString({
  min: 1,
  max: 128,
  pattern: /^[a-zA-Z0-9_.,@/:#-]+$/,
  patternText: '[a-zA-Z0-9_.,@/:#-]+',
});
const attributeValue = awsString({
  max: 800,
  pattern: /^[a-zA-Z0-9_.,@/:#=[\]-]*$/,
  patternText: '[a-zA-Z0-9_.,@/:#=\\[\\]-]*',
});
const attributes = z.record(attributeName, attributeValue, { error: 'Member must be a map of strings' });
const attributePayload = z
  .object({ attributes: attributes.optional(), merge: awsBool().optional() })
  .optional();
/** Tags given at create time (reference §3.11: key 1..128, value 0..256), kept by src/tags. */
const tags = tagList.optional();
const description = awsString({
  max: 2028,
  pattern: /^[\p{L}\p{N}\p{P}\p{S}\x20]*$/u,
  patternText: '[\\p{Graph}\\x20]*',
});
const thingTypeProperties = z
  .object({
    thingTypeDescription: description.optional(),
    searchableAttributes: z
      .array(attributeName)
      .max(3, { error: 'Member must have length less than or equal to 3' })
      .optional(),
    mqtt5Configuration: z
      .object({
        propagatingAttributes: z
          .array(
            z.object({
              userPropertyKey: awsString({ max: 128 }).optional(),
              thingAttribute: awsString({ max: 128 }).optional(),
              connectionAttribute: awsString({ max: 128 }).optional(),
            }),
          )
          .optional(),
      })
      .optional(),
  })
  .optional();
const groupProperties = z
  .object({ thingGroupDescription: description.optional(), attributePayload })
  .optional();
const token = awsString({ max: 1024 }).optional();
const version = awsInt().optional();
const queryString = awsString({ min: 1, max: 1000 });
const principal = awsString({ min: 1, max: 2048 });

const LIST_QUERY = {
  nextToken: { type: 'string' },
  maxResults: { type: 'integer' },
} as const;

type Handler = (input: any, request: AwsRequest) => unknown;

/** Registry operations: List* and Search* are read-only whatever their method. */
const op = (
  name: string,
  method: AwsOperation['method'],
  path: string,
  handler: Handler,
  options: IotOperationOptions = {},
): AwsOperation =>
  iotOperation(name, method, path, handler, {
    ...options,
    readOnly: options.readOnly ?? (method === 'GET' || name.startsWith('Search') || name.startsWith('List')),
  });

/**
 * Every registry operation served over the AWS-compatible API.
 * @example createAwsApi({ operations: [...registryOperations(registry)], credentials, logger, metrics })
 */
/**
 * Every registry operation; each answers once the change events of its writes were applied in this
 * process (live authorization included) and handed to the other processes.
 */
export function registryOperations(r: ThingRegistry): AwsOperation[] {
  return operations(r).map((op) => ({
    ...op,
    handler: async (request: AwsRequest) => {
      const result = await op.handler(request);
      await r.settled();
      return result;
    },
  }));
}

function operations(r: ThingRegistry): AwsOperation[] {
  const groupRef = z.object({
    thingGroupName: name().optional(),
    thingGroupArn: awsString({ max: 2048 }).optional(),
    thingName: name().optional(),
    thingArn: awsString({ max: 2048 }).optional(),
    overrideDynamicGroups: awsBool().optional(),
  });
  const billingRef = z.object({
    billingGroupName: name().optional(),
    billingGroupArn: awsString({ max: 2048 }).optional(),
    thingName: name().optional(),
    thingArn: awsString({ max: 2048 }).optional(),
  });
  return [
    // --- things (§3.1) -------------------------------------------------------------------------------
    op('CreateThing', 'POST', '/things/{thingName}', (i) => r.createThing(i), {
      input: z.object({
        thingName: name(),
        thingTypeName: name().optional(),
        attributePayload,
        billingGroupName: name().optional(),
      }),
    }),
    op('DescribeThing', 'GET', '/things/{thingName}', (i) => r.describeThing(i), {
      input: z.object({ thingName: name() }),
    }),
    op('ListThings', 'GET', '/things', (i) => r.listThings(i), {
      query: {
        ...LIST_QUERY,
        attributeName: { type: 'string' },
        attributeValue: { type: 'string' },
        thingTypeName: { type: 'string' },
        usePrefixAttributeValue: { type: 'boolean' },
      },
      input: z.object({
        nextToken: token,
        maxResults: maxResults(),
        attributeName: attributeName.optional(),
        attributeValue: attributeValue.optional(),
        thingTypeName: name().optional(),
        usePrefixAttributeValue: awsBool().optional(),
      }),
    }),
    op('UpdateThing', 'PATCH', '/things/{thingName}', (i) => r.updateThing(i), {
      input: z.object({
        thingName: name(),
        thingTypeName: name().optional(),
        attributePayload,
        expectedVersion: version,
        removeThingType: awsBool().optional(),
      }),
    }),
    op('DeleteThing', 'DELETE', '/things/{thingName}', (i) => r.deleteThing(i), {
      query: { expectedVersion: { type: 'integer' } },
      input: z.object({ thingName: name(), expectedVersion: version }),
    }),

    // --- thing types ---------------------------------------------------------------------------------
    op('CreateThingType', 'POST', '/thing-types/{thingTypeName}', (i) => r.createThingType(i), {
      input: z.object({ thingTypeName: name(), thingTypeProperties, tags }),
    }),
    op('DescribeThingType', 'GET', '/thing-types/{thingTypeName}', (i) => r.describeThingType(i), {
      input: z.object({ thingTypeName: name() }),
    }),
    op('ListThingTypes', 'GET', '/thing-types', (i) => r.listThingTypes(i), {
      query: { ...LIST_QUERY, thingTypeName: { type: 'string' } },
      input: z.object({ nextToken: token, maxResults: maxResults(), thingTypeName: name().optional() }),
    }),
    op('UpdateThingType', 'PATCH', '/thing-types/{thingTypeName}', (i) => r.updateThingType(i), {
      input: z.object({ thingTypeName: name(), thingTypeProperties }),
    }),
    op(
      'DeprecateThingType',
      'POST',
      '/thing-types/{thingTypeName}/deprecate',
      (i) => r.deprecateThingType(i),
      {
        input: z.object({ thingTypeName: name(), undoDeprecate: awsBool().optional() }),
      },
    ),
    op('DeleteThingType', 'DELETE', '/thing-types/{thingTypeName}', (i) => r.deleteThingType(i), {
      input: z.object({ thingTypeName: name() }),
    }),

    // --- thing groups --------------------------------------------------------------------------------
    op('CreateThingGroup', 'POST', '/thing-groups/{thingGroupName}', (i) => r.createThingGroup(i), {
      input: z.object({
        thingGroupName: name(),
        parentGroupName: name().optional(),
        thingGroupProperties: groupProperties,
        tags,
      }),
    }),
    op('DescribeThingGroup', 'GET', '/thing-groups/{thingGroupName}', (i) => r.describeThingGroup(i), {
      input: z.object({ thingGroupName: name() }),
    }),
    op('UpdateThingGroup', 'PATCH', '/thing-groups/{thingGroupName}', (i) => r.updateThingGroup(i), {
      input: z.object({
        thingGroupName: name(),
        thingGroupProperties: z.object({ thingGroupDescription: description.optional(), attributePayload }),
        expectedVersion: version,
      }),
    }),
    op('DeleteThingGroup', 'DELETE', '/thing-groups/{thingGroupName}', (i) => r.deleteThingGroup(i), {
      query: { expectedVersion: { type: 'integer' } },
      input: z.object({ thingGroupName: name(), expectedVersion: version }),
    }),
    op('ListThingGroups', 'GET', '/thing-groups', (i) => r.listThingGroups(i), {
      query: {
        ...LIST_QUERY,
        parentGroup: { type: 'string' },
        namePrefixFilter: { type: 'string' },
        recursive: { type: 'boolean' },
      },
      input: z.object({
        nextToken: token,
        maxResults: maxResults(),
        parentGroup: name().optional(),
        namePrefixFilter: name().optional(),
        recursive: awsBool().optional(),
      }),
    }),
    op(
      'AddThingToThingGroup',
      'PUT',
      '/thing-groups/addThingToThingGroup',
      (i) => r.addThingToThingGroup(i),
      {
        input: groupRef,
      },
    ),
    op(
      'RemoveThingFromThingGroup',
      'PUT',
      '/thing-groups/removeThingFromThingGroup',
      (i) => r.removeThingFromThingGroup(i),
      { input: groupRef },
    ),
    op(
      'UpdateThingGroupsForThing',
      'PUT',
      '/thing-groups/updateThingGroupsForThing',
      (i) => r.updateThingGroupsForThing(i),
      {
        input: z.object({
          thingName: name().optional(),
          thingGroupsToAdd: z.array(name()).max(10).optional(),
          thingGroupsToRemove: z.array(name()).max(10).optional(),
          overrideDynamicGroups: awsBool().optional(),
        }),
      },
    ),
    op(
      'ListThingsInThingGroup',
      'GET',
      '/thing-groups/{thingGroupName}/things',
      (i) => r.listThingsInThingGroup(i),
      {
        query: { ...LIST_QUERY, recursive: { type: 'boolean' } },
        input: z.object({
          thingGroupName: name(),
          recursive: awsBool().optional(),
          nextToken: token,
          maxResults: maxResults(),
        }),
      },
    ),
    op(
      'ListThingGroupsForThing',
      'GET',
      '/things/{thingName}/thing-groups',
      (i) => r.listThingGroupsForThing(i),
      {
        query: LIST_QUERY,
        input: z.object({ thingName: name(), nextToken: token, maxResults: maxResults() }),
      },
    ),

    // --- dynamic thing groups ------------------------------------------------------------------------
    op(
      'CreateDynamicThingGroup',
      'POST',
      '/dynamic-thing-groups/{thingGroupName}',
      (i) => r.createDynamicThingGroup(i),
      {
        input: z.object({
          thingGroupName: name(),
          queryString,
          thingGroupProperties: groupProperties,
          indexName: name().optional(),
          queryVersion: awsString({ max: 128 }).optional(),
          tags,
        }),
      },
    ),
    op(
      'UpdateDynamicThingGroup',
      'PATCH',
      '/dynamic-thing-groups/{thingGroupName}',
      (i) => r.updateDynamicThingGroup(i),
      {
        input: z.object({
          thingGroupName: name(),
          thingGroupProperties: z.object({ thingGroupDescription: description.optional(), attributePayload }),
          expectedVersion: version,
          indexName: name().optional(),
          queryString: queryString.optional(),
          queryVersion: awsString({ max: 128 }).optional(),
        }),
      },
    ),
    op(
      'DeleteDynamicThingGroup',
      'DELETE',
      '/dynamic-thing-groups/{thingGroupName}',
      (i) => r.deleteDynamicThingGroup(i),
      {
        query: { expectedVersion: { type: 'integer' } },
        input: z.object({ thingGroupName: name(), expectedVersion: version }),
      },
    ),

    // --- billing groups ------------------------------------------------------------------------------
    op('CreateBillingGroup', 'POST', '/billing-groups/{billingGroupName}', (i) => r.createBillingGroup(i), {
      input: z.object({
        billingGroupName: name(),
        billingGroupProperties: z.object({ billingGroupDescription: description.optional() }).optional(),
        tags,
      }),
    }),
    op(
      'DescribeBillingGroup',
      'GET',
      '/billing-groups/{billingGroupName}',
      (i) => r.describeBillingGroup(i),
      {
        input: z.object({ billingGroupName: name() }),
      },
    ),
    op('UpdateBillingGroup', 'PATCH', '/billing-groups/{billingGroupName}', (i) => r.updateBillingGroup(i), {
      input: z.object({
        billingGroupName: name(),
        billingGroupProperties: z.object({ billingGroupDescription: description.optional() }),
        expectedVersion: version,
      }),
    }),
    op('DeleteBillingGroup', 'DELETE', '/billing-groups/{billingGroupName}', (i) => r.deleteBillingGroup(i), {
      query: { expectedVersion: { type: 'integer' } },
      input: z.object({ billingGroupName: name(), expectedVersion: version }),
    }),
    op('ListBillingGroups', 'GET', '/billing-groups', (i) => r.listBillingGroups(i), {
      query: { ...LIST_QUERY, namePrefixFilter: { type: 'string' } },
      input: z.object({ nextToken: token, maxResults: maxResults(), namePrefixFilter: name().optional() }),
    }),
    op(
      'AddThingToBillingGroup',
      'PUT',
      '/billing-groups/addThingToBillingGroup',
      (i) => r.setBillingGroup(i, true),
      { input: billingRef },
    ),
    op(
      'RemoveThingFromBillingGroup',
      'PUT',
      '/billing-groups/removeThingFromBillingGroup',
      (i) => r.setBillingGroup(i, false),
      { input: billingRef },
    ),
    op(
      'ListThingsInBillingGroup',
      'GET',
      '/billing-groups/{billingGroupName}/things',
      (i) => r.listThingsInBillingGroup(i),
      {
        query: LIST_QUERY,
        input: z.object({ billingGroupName: name(), nextToken: token, maxResults: maxResults() }),
      },
    ),

    // --- principals (§3.2) ---------------------------------------------------------------------------
    op('AttachThingPrincipal', 'PUT', '/things/{thingName}/principals', (i) => r.attachThingPrincipal(i), {
      headers: { principal: 'x-amzn-principal' },
      query: { thingPrincipalType: { type: 'string' } },
      input: z.object({
        thingName: name(),
        principal,
        thingPrincipalType: z
          .enum(['EXCLUSIVE_THING', 'NON_EXCLUSIVE_THING'], {
            error: 'Member must satisfy enum value set: [EXCLUSIVE_THING, NON_EXCLUSIVE_THING]',
          })
          .optional(),
      }),
    }),
    op('DetachThingPrincipal', 'DELETE', '/things/{thingName}/principals', (i) => r.detachThingPrincipal(i), {
      headers: { principal: 'x-amzn-principal' },
      input: z.object({ thingName: name(), principal }),
    }),
    op('ListThingPrincipals', 'GET', '/things/{thingName}/principals', (i) => r.listThingPrincipals(i), {
      query: LIST_QUERY,
      input: z.object({ thingName: name(), nextToken: token, maxResults: maxResults() }),
    }),
    op(
      'ListThingPrincipalsV2',
      'GET',
      '/things/{thingName}/principals-v2',
      (i) => r.listThingPrincipals(i, true),
      {
        query: { ...LIST_QUERY, thingPrincipalType: { type: 'string' } },
        input: z.object({
          thingName: name(),
          nextToken: token,
          maxResults: maxResults(),
          thingPrincipalType: z.enum(['EXCLUSIVE_THING', 'NON_EXCLUSIVE_THING']).optional(),
        }),
      },
    ),
    op('ListPrincipalThings', 'GET', '/principals/things', (i) => r.listPrincipalThings(i), {
      headers: { principal: 'x-amzn-principal' },
      query: LIST_QUERY,
      input: z.object({ principal, nextToken: token, maxResults: maxResults() }),
    }),

    // --- fleet indexing ------------------------------------------------------------------------------
    op('SearchIndex', 'POST', '/indices/search', (i) => r.searchIndex(i), {
      readOnly: true,
      input: z.object({
        queryString,
        indexName: name().optional(),
        nextToken: token,
        maxResults: awsInt(1, 500).optional(),
        queryVersion: awsString({ max: 128 }).optional(),
      }),
    }),
    op('DescribeIndex', 'GET', '/indices/{indexName}', (i) => r.describeIndex(i), {
      input: z.object({ indexName: name() }),
    }),
    op('ListIndices', 'GET', '/indices', () => r.listIndices(), {
      query: LIST_QUERY,
    }),
    op('GetIndexingConfiguration', 'GET', '/indexing/config', () => r.getIndexingConfiguration()),
    op('UpdateIndexingConfiguration', 'POST', '/indexing/config', (i) => r.updateIndexingConfiguration(i), {
      input: indexingInput,
    }),

    // --- account (§3.6) and registry events (§8.6) ---------------------------------------------------
    op('DescribeEndpoint', 'GET', '/endpoint', (i) => r.describeEndpoint(i), {
      query: { endpointType: { type: 'string' } },
      input: z.object({ endpointType: awsString({ max: 128 }).optional() }),
    }),
    op('GetRegistrationCode', 'GET', '/registrationcode', () => r.getRegistrationCode()),
    op('DescribeEventConfigurations', 'GET', '/event-configurations', () => r.describeEventConfigurations()),
    op('UpdateEventConfigurations', 'PATCH', '/event-configurations', (i) => r.updateEventConfigurations(i), {
      input: z.object({
        eventConfigurations: z
          .partialRecord(
            z.enum(EVENT_TYPES, { error: `Member must satisfy enum value set: [${EVENT_TYPES.join(', ')}]` }),
            z.object({ Enabled: awsBool().optional() }),
          )
          .optional(),
      }),
    }),
  ];
}
