import type { StartedContext } from '../api/index.js';
import type { Database } from '../store/index.js';
import { tagOperations } from './api.js';
import { createTagService, type ResourceExists, type TagService } from './service.js';
import { openTagStore } from './store.js';

/**
 * Start the tags context: the tag store, the service other contexts are given (`ResourceTags`) and the
 * TagResource, UntagResource and ListTagsForResource operations. `exists` is asked per request (it reads
 * contexts started after this one).
 */
export async function startTags(deps: {
  readonly db: Database;
  readonly scope: { readonly region: string; readonly accountId: string };
  readonly exists: ResourceExists;
}): Promise<StartedContext<TagService>> {
  const service = createTagService({
    store: await openTagStore(deps.db),
    scope: deps.scope,
    exists: deps.exists,
  });
  return { name: 'tags', service, operations: tagOperations(service), close: () => undefined };
}
