/**
 * Topic name and topic filter rules (pure functions, no I/O).
 *
 * Standard MQTT semantics win over AWS deviations: `a/#` matches `a` [MQTT-4.7.1-2], wildcards are only
 * valid in filters [MQTT-4.7.1-1], and topics starting with `$` are not matched by a leading `#` or `+`
 * [MQTT-4.7.2-1]. AWS's size limits (256 bytes, 8 levels) come from config.limits and are configurable.
 */

export interface TopicLimits {
  readonly maxTopicBytes: number;
  readonly maxTopicLevels: number;
}

/** Why a topic or filter was refused; maps to MQTT 5 reason codes by the handlers. */
export type TopicProblem = 'empty' | 'wildcard' | 'nul' | 'too_long' | 'too_many_levels' | 'bad_filter';

/** Basic Ingest prefix `$aws/rules/{rule}/` does not count toward the level limit (AWS §11). */
function countedLevels(topic: string): number {
  let levels = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) levels++;
  if (topic.startsWith('$aws/rules/')) {
    const ruleEnd = topic.indexOf('/', 11);
    if (ruleEnd > 0) levels -= 3;
  }
  return levels;
}

/**
 * Validate a PUBLISH topic name. Hot path: one pass over the string, no allocation on success.
 * [MQTT-3.3.2-1] UTF-8 (the codec decodes it), [MQTT-3.3.2-2] no wildcards, [MQTT-4.7.3-1] not empty,
 * [MQTT-4.7.3-2] no NUL.
 */
export function checkTopicName(topic: string, limits: TopicLimits): TopicProblem | null {
  const n = topic.length;
  if (n === 0) return 'empty';
  let levels = 1;
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c === 47) levels++;
    else if (c === 43 || c === 35) return 'wildcard';
    else if (c === 0) return 'nul';
  }
  // Fast byte-length bound: UTF-16 length <= UTF-8 bytes <= 3 * length.
  if (n * 3 > limits.maxTopicBytes && Buffer.byteLength(topic) > limits.maxTopicBytes) return 'too_long';
  if (levels > limits.maxTopicLevels && countedLevels(topic) > limits.maxTopicLevels)
    return 'too_many_levels';
  return null;
}

/**
 * Validate a topic filter [MQTT-4.7.1-1..3]: `#` only as the last level and alone in it, `+` alone in its
 * level, not empty [MQTT-4.7.3-1], no NUL [MQTT-4.7.3-2].
 */
export function checkTopicFilter(filter: string, limits: TopicLimits): TopicProblem | null {
  if (filter.length === 0) return 'empty';
  if (filter.includes('\u0000')) return 'nul';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return 'bad_filter';
    if (level.includes('+') && level !== '+') return 'bad_filter';
  }
  if (Buffer.byteLength(filter) > limits.maxTopicBytes) return 'too_long';
  if (countedLevels(filter) > limits.maxTopicLevels) return 'too_many_levels';
  return null;
}

export interface SharedFilter {
  readonly group: string;
  readonly filter: string;
}

/**
 * Parse `$share/{ShareName}/{filter}` [MQTT-4.8.2-1, MQTT-4.8.2-2]: the share name is at least one
 * character, has no `/`, `+` or `#`, and is followed by a `/` and a non-empty filter.
 * Returns null for a non-shared filter, 'invalid' for a malformed shared one.
 */
export function parseShared(filter: string): SharedFilter | null | 'invalid' {
  if (!filter.startsWith('$share/')) return null;
  const rest = filter.slice(7);
  const slash = rest.indexOf('/');
  if (slash <= 0) return 'invalid';
  const group = rest.slice(0, slash);
  if (group.includes('+') || group.includes('#')) return 'invalid';
  const inner = rest.slice(slash + 1);
  if (inner.length === 0) return 'invalid';
  return { group, filter: inner };
}

/** True when `filter` has no wildcard, i.e. names exactly one topic. */
export function isExactFilter(filter: string): boolean {
  return !filter.includes('+') && !filter.includes('#');
}

/**
 * Does a topic name match a filter? Used for retained-message replay and unit tests; the router uses the
 * trie for routing. Follows [MQTT-4.7.1-2] (`a/#` matches `a`) and [MQTT-4.7.2-1] (`$` topics).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 36 && (filter.charCodeAt(0) === 43 || filter.charCodeAt(0) === 35))
    return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A validated subscription filter split into its share group (if `$share/{group}/...`) and topic filter. */
export function splitShared(full: string): { group: string | undefined; filter: string } {
  if (!full.startsWith('$share/')) return { group: undefined, filter: full };
  const slash = full.indexOf('/', 7);
  return { group: full.slice(7, slash), filter: full.slice(slash + 1) };
}
