import { E } from '../errors/index.js';
import type { Tag, TagStore } from './store.js';

/**
 * Resource tags (AWS IoT Developer Guide "Tagging your AWS IoT resources"; reference §3.11): at most 50 tags
 * per resource, keys 1..128 characters, values 0..256, the `aws:` key prefix (any case) reserved. Tags are
 * stored by resource ARN; the owning context stores the tags given at create time (`ResourceTags.add`) and
 * forgets them when the resource is deleted (`ResourceTags.removeAll`).
 */

/** AWS's per-resource tag limit. */
export const MAX_TAGS_PER_RESOURCE = 50;
/** Tags per ListTagsForResource page (one page holds every tag a resource may have). */
const PAGE_SIZE = MAX_TAGS_PER_RESOURCE;

/**
 * Does a resource exist? By ARN resource type (`thinggroup`, `policy`, `rule`, ...): the composition root
 * (src/platform) gives one check per type it can answer for; other types cannot be tagged.
 */
export type ResourceExists = Readonly<Record<string, (name: string, arn: string) => Promise<boolean>>>;

/**
 * What another context is given to keep the tags of the resources it owns (create and delete paths):
 * check before creating, add after the create committed, remove all after the delete committed.
 * @example tags.check(input.tags); await store.insert(...); await tags.add(arnOf(name), input.tags);
 */
export interface ResourceTags {
  /** Throws InvalidRequest when `tags` break AWS's constraints (reserved prefix, duplicates, more than 50). */
  check(tags: readonly Tag[] | undefined): void;
  /** Store the tags given when the resource was created (or tagged); checks them first. */
  add(resourceArn: string, tags: readonly Tag[] | undefined): Promise<void>;
  /** Forget every tag of a resource that was deleted. */
  removeAll(resourceArn: string): Promise<void>;
}

/** The tagging operations' service: ResourceTags plus the checks TagResource and friends need. */
export interface TagService extends ResourceTags {
  tagResource(input: { resourceArn: string; tags: readonly Tag[] }): Promise<void>;
  untagResource(input: { resourceArn: string; tagKeys: readonly string[] }): Promise<void>;
  listTagsForResource(input: {
    resourceArn: string;
    nextToken?: string;
  }): Promise<{ tags: Tag[]; nextToken?: string }>;
}

const RESERVED = /^aws:/i;
const ARN = /^arn:aws[a-z-]*:iot:([^:]*):([^:]*):([a-z]+)\/(.+)$/;

function token(last: string): string {
  return Buffer.from(JSON.stringify({ k: last })).toString('base64url');
}

function untoken(t: string | undefined): string | undefined {
  if (t === undefined || t === '') return undefined;
  try {
    const v = JSON.parse(Buffer.from(t, 'base64url').toString('utf8'));
    if (typeof v?.k === 'string') return v.k as string;
  } catch {
    /* fall through */
  }
  throw E.NextTokenInvalid({ token: t.slice(0, 64) });
}

/**
 * The tag service over a tag store. `exists` answers per resource type; an ARN of this platform's region and
 * account whose resource does not exist is ResourceNotFoundException (reference §6.2).
 * @example const tags = createTagService({ store, scope: { region, accountId }, exists: { policy: ... } });
 */
export function createTagService(options: {
  readonly store: TagStore;
  readonly scope: { readonly region: string; readonly accountId: string };
  readonly exists: ResourceExists;
}): TagService {
  const { store } = options;

  function check(tags: readonly Tag[] | undefined): void {
    if (!tags) return;
    const seen = new Set<string>();
    for (const t of tags) {
      if (RESERVED.test(t.Key)) throw E.TagKeyReserved({ key: t.Key });
      if (seen.has(t.Key)) throw E.TagKeyDuplicate({ key: t.Key });
      seen.add(t.Key);
    }
    if (tags.length > MAX_TAGS_PER_RESOURCE) throw E.TagLimit({ max: MAX_TAGS_PER_RESOURCE });
  }

  async function add(resourceArn: string, tags: readonly Tag[] | undefined): Promise<void> {
    check(tags);
    if (!tags?.length) return;
    if (!(await store.put(resourceArn, tags, MAX_TAGS_PER_RESOURCE)))
      throw E.TagLimit({ max: MAX_TAGS_PER_RESOURCE });
  }

  /** The resource must be a taggable type of this platform and exist. */
  async function mustExist(resourceArn: string): Promise<void> {
    const m = ARN.exec(resourceArn);
    if (!m) throw E.TagArnInvalid({ resourceArn });
    const [, region, account, type, name] = m as unknown as [string, string, string, string, string];
    const exists = options.exists[type];
    if (!exists) throw E.TagResourceType({ type, types: Object.keys(options.exists).sort() });
    const here = region === options.scope.region && account === options.scope.accountId;
    if (!here || !(await exists(name, resourceArn))) throw E.TagResourceNotFound({ resourceArn });
  }

  return {
    check,
    add,
    removeAll: (resourceArn) => store.removeAll(resourceArn),
    async tagResource({ resourceArn, tags }) {
      await mustExist(resourceArn);
      await add(resourceArn, tags);
    },
    async untagResource({ resourceArn, tagKeys }) {
      await mustExist(resourceArn);
      for (const key of tagKeys) if (RESERVED.test(key)) throw E.TagKeyReserved({ key });
      await store.remove(resourceArn, tagKeys);
    },
    async listTagsForResource({ resourceArn, nextToken }) {
      await mustExist(resourceArn);
      const rows = await store.list(resourceArn, { after: untoken(nextToken), limit: PAGE_SIZE + 1 });
      if (rows.length <= PAGE_SIZE) return { tags: rows };
      const tags = rows.slice(0, PAGE_SIZE);
      return { tags, nextToken: token(tags[tags.length - 1]!.Key) };
    },
  };
}
