/**
 * Tags: key/value labels on control-plane resources (thing groups, thing types, billing groups, policies,
 * topic rules, rule destinations; jobs later), stored by resource ARN, with AWS's constraints (at most 50 per
 * resource, `aws:` reserved). Owns the tag store and TagResource, UntagResource and ListTagsForResource.
 * The contexts that own resources are handed `ResourceTags` to store the tags given at create time and to
 * forget them on delete; the composition root tells it, per ARN type, whether a resource exists.
 * Imports: api (its operation declarations), errors, store.
 */
export { startTags } from './module.js';
export {
  createTagService,
  MAX_TAGS_PER_RESOURCE,
  type ResourceExists,
  type ResourceTags,
  type TagService,
} from './service.js';
export { openTagStore, TAG_MIGRATIONS, type Tag, type TagStore } from './store.js';
export { parseTagging, tagList, tagOperations } from './api.js';
