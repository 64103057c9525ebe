import { z } from 'zod';
import { awsString, iotOperation, type AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import type { TagService } from './service.js';
import type { Tag } from './store.js';

/**
 * The tagging operations of the AWS control plane (routes from the @aws-sdk/client-iot model):
 * TagResource `POST /tags`, UntagResource `POST /untag`, ListTagsForResource `GET /tags?resourceArn=`.
 */

/** Tag key and value as the model constrains them (TagKey pattern, TagValue 0..256). */
export const tagKey = awsString({
  min: 1,
  max: 128,
  pattern: /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u,
  patternText: '^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$',
});
const tagValue = awsString({ max: 256 });

/** The `tags` member of Create* operations and TagResource: `[{ Key, Value? }]`. */
export const tagList = z.array(z.object({ Key: tagKey, Value: tagValue.optional() }));

const resourceArn = awsString({ min: 1, max: 2048 });

/**
 * Parse CreateTopicRule's `x-amz-tagging` header (reference §2: URL query format, `k=v&k2=v2`) into tags,
 * checked against the tag constraints.
 * @example parseTagging('env=prod&team=a%20b') // [{ Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'a b' }]
 */
export function parseTagging(header: string | undefined): Tag[] | undefined {
  if (header === undefined || header === '') return undefined;
  const tags: Tag[] = [];
  for (const [Key, Value] of new URLSearchParams(header)) tags.push({ Key, Value });
  const parsed = tagList.safeParse(tags);
  if (!parsed.success) throw E.TaggingHeaderInvalid({ header: header.slice(0, 256) });
  return parsed.data;
}

/** Every tagging operation, bound to the tag service. */
export function tagOperations(tags: TagService): AwsOperation[] {
  return [
    iotOperation('TagResource', 'POST', '/tags', (i: any) => tags.tagResource(i).then(() => ({})), {
      input: z.object({ resourceArn, tags: tagList }),
    }),
    iotOperation('UntagResource', 'POST', '/untag', (i: any) => tags.untagResource(i).then(() => ({})), {
      input: z.object({ resourceArn, tagKeys: z.array(tagKey) }),
    }),
    iotOperation('ListTagsForResource', 'GET', '/tags', (i: any) => tags.listTagsForResource(i), {
      query: { resourceArn: { type: 'string' }, nextToken: { type: 'string' } },
      input: z.object({ resourceArn, nextToken: awsString({ max: 1024 }).optional() }),
    }),
  ];
}
