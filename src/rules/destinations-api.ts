import { z } from 'zod';
import { awsInt, awsString, iotOperation, type AwsOperation, type AwsRequest } from '../api/index.js';
import { E } from '../errors/index.js';
import type { ResourceTags } from '../tags/index.js';
import type { TopicRuleDestinations } from './destinations.js';

/**
 * Topic rule destination operations (routes from the @aws-sdk/client-iot model; `{arn+}` and
 * `{confirmationToken+}` are greedy labels: an ARN's `/` arrive unencoded).
 */

const arn = awsString({ min: 1, max: 2048 });
const STATUSES = ['ENABLED', 'IN_PROGRESS', 'DISABLED', 'ERROR', 'DELETING'] as const;

/** The base URL the caller reached this API at: the confirmation message's enableUrl points there. */
function apiBase(request: AwsRequest): string {
  const proto = request.headers['x-forwarded-proto'] === 'https' ? 'https' : 'http';
  return `${proto}://${request.headers.host ?? 'localhost'}`;
}

export function destinationOperations(
  destinations: TopicRuleDestinations,
  options: { tags?: ResourceTags } = {},
): AwsOperation[] {
  return [
    iotOperation(
      'CreateTopicRuleDestination',
      'POST',
      '/destinations',
      async (i, request) => {
        const url = i.destinationConfiguration.httpUrlConfiguration?.confirmationUrl;
        if (url === undefined) throw E.DestinationKind();
        return { topicRuleDestination: await destinations.create(url, apiBase(request)) };
      },
      {
        input: z.object({
          destinationConfiguration: z
            .object({
              httpUrlConfiguration: z.object({ confirmationUrl: awsString({ max: 2000 }) }).optional(),
            })
            .loose(),
        }),
      },
    ),
    iotOperation(
      'GetTopicRuleDestination',
      'GET',
      '/destinations/{arn+}',
      async (i) => ({ topicRuleDestination: await destinations.get(i.arn) }),
      { input: z.object({ arn }) },
    ),
    iotOperation('ListTopicRuleDestinations', 'GET', '/destinations', (i) => destinations.list(i), {
      query: { maxResults: { type: 'integer' }, nextToken: { type: 'string' } },
      input: z.object({
        maxResults: awsInt(1, 1000).optional(),
        nextToken: awsString({ max: 1024 }).optional(),
      }),
    }),
    iotOperation(
      'UpdateTopicRuleDestination',
      'PATCH',
      '/destinations',
      async (i, request) => {
        await destinations.update(i.arn, i.status, apiBase(request));
        return {};
      },
      {
        input: z.object({
          arn,
          status: z.enum(STATUSES, { error: `Member must satisfy enum value set: [${STATUSES.join(', ')}]` }),
        }),
      },
    ),
    iotOperation(
      'DeleteTopicRuleDestination',
      'DELETE',
      '/destinations/{arn+}',
      async (i) => {
        await destinations.delete(i.arn);
        await options.tags?.removeAll(i.arn);
        return {};
      },
      { input: z.object({ arn }) },
    ),
    {
      // Also served unsigned: the confirmation message's enableUrl is this route, and the token is the secret.
      ...iotOperation(
        'ConfirmTopicRuleDestination',
        'GET',
        '/confirmdestination/{confirmationToken+}',
        async (i) => {
          await destinations.confirm(i.confirmationToken);
          return {};
        },
        { input: z.object({ confirmationToken: awsString({ min: 1, max: 2048 }) }), readOnly: false },
      ),
      unsigned: true,
    },
  ];
}
