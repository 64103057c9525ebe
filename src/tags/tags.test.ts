import { describe, expect, test } from 'vitest';
import { isThingsteadError } from '../errors/index.js';
import { createTagService, parseTagging, type Tag, type TagStore } from './index.js';

/** Unit tests of the tag rules on an in-memory store (the SQL store has its contract suite). */

function memoryStore(): TagStore {
  const rows = new Map<string, Map<string, string | undefined>>();
  return {
    async put(arn, tags, max) {
      const next = new Map(rows.get(arn) ?? []);
      for (const t of tags) next.set(t.Key, t.Value);
      if (next.size > max) return false;
      rows.set(arn, next);
      return true;
    },
    async remove(arn, keys) {
      for (const k of keys) rows.get(arn)?.delete(k);
    },
    async removeAll(arn) {
      rows.delete(arn);
    },
    async list(arn, page) {
      return [...(rows.get(arn) ?? [])]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .filter(([k]) => k > (page.after ?? ''))
        .slice(0, page.limit)
        .map(([Key, Value]): Tag => (Value === undefined ? { Key } : { Key, Value }));
    },
  };
}

const scope = { region: 'us-east-1', accountId: '000000000000' };
const ARN = 'arn:aws:iot:us-east-1:000000000000:policy/p';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return isThingsteadError(err) ? `${err.spec.awsName}:${err.kind}` : String(err);
  }
  return 'ok';
};

describe('parseTagging (x-amz-tagging, URL query format)', () => {
  test('decodes pairs; a key without = has an empty value; empty is no tags', () => {
    expect(parseTagging('env=prod&team=a%20b%2Fc&flag')).toEqual([
      { Key: 'env', Value: 'prod' },
      { Key: 'team', Value: 'a b/c' },
      { Key: 'flag', Value: '' },
    ]);
    expect(parseTagging(undefined)).toBeUndefined();
    expect(parseTagging('')).toBeUndefined();
  });

  test('a key or value out of bounds is InvalidRequestException', () => {
    expect(code(() => parseTagging(`${'k'.repeat(129)}=v`))).toBe(
      'InvalidRequestException:TaggingHeaderInvalid',
    );
    expect(code(() => parseTagging(`k=${'v'.repeat(257)}`))).toBe(
      'InvalidRequestException:TaggingHeaderInvalid',
    );
  });
});

describe('the tag service', () => {
  const service = (exists = true) =>
    createTagService({ store: memoryStore(), scope, exists: { policy: async () => exists } });

  test('check: aws: in any case, duplicates and more than 50 are refused', () => {
    const s = service();
    expect(code(() => s.check([{ Key: 'Aws:x' }]))).toBe('InvalidRequestException:TagKeyReserved');
    expect(code(() => s.check([{ Key: 'a' }, { Key: 'a' }]))).toBe('InvalidRequestException:TagKeyDuplicate');
    const many = Array.from({ length: 51 }, (_, i) => ({ Key: `k${i}` }));
    expect(code(() => s.check(many))).toBe('InvalidRequestException:TagLimit');
    expect(code(() => s.check(many.slice(1)))).toBe('ok');
    expect(code(() => s.check([{ Key: 'awsome' }, { Key: 'x:aws:' }]))).toBe('ok');
  });

  test('the ARN decides: malformed, untaggable type, other region or a missing resource', async () => {
    const fails = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: unknown) => (isThingsteadError(e) ? e.kind : String(e)),
      );
    expect(await fails(service().listTagsForResource({ resourceArn: 'policy/p' }))).toBe('TagArnInvalid');
    expect(
      await fails(
        service().listTagsForResource({ resourceArn: 'arn:aws:iot:us-east-1:000000000000:thing/t' }),
      ),
    ).toBe('TagResourceType');
    expect(
      await fails(
        service().listTagsForResource({ resourceArn: 'arn:aws:iot:eu-west-1:000000000000:policy/p' }),
      ),
    ).toBe('TagResourceNotFound');
    expect(await fails(service(false).listTagsForResource({ resourceArn: ARN }))).toBe('TagResourceNotFound');
    expect(await fails(service().listTagsForResource({ resourceArn: ARN, nextToken: 'bogus' }))).toBe(
      'NextTokenInvalid',
    );
  });

  test('add merges with what the resource has, within the limit; removeAll forgets', async () => {
    const s = service();
    await s.add(
      ARN,
      Array.from({ length: 49 }, (_, i) => ({ Key: `k${i}`, Value: '' })),
    );
    await s.tagResource({ resourceArn: ARN, tags: [{ Key: 'k0', Value: 'again' }, { Key: 'last' }] });
    expect((await s.listTagsForResource({ resourceArn: ARN })).tags).toHaveLength(50);
    await expect(s.tagResource({ resourceArn: ARN, tags: [{ Key: 'over' }] })).rejects.toMatchObject({
      kind: 'TagLimit',
    });
    await s.removeAll(ARN);
    expect((await s.listTagsForResource({ resourceArn: ARN })).tags).toEqual([]);
  });
});
