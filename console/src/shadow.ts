/**
 * Shadow document arithmetic as AWS IoT defines it (Developer Guide, "Device Shadow service documents"),
 * for the editor's preview: an update's `desired` is merged into the current one (null deletes a key,
 * objects merge key by key, anything else replaces), and the delta is every desired key whose value
 * differs from reported (objects compared key by key, arrays and scalars as whole values).
 */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function mergeState(current: Json | undefined, patch: Json): Json | undefined {
  if (!isObject(patch)) return patch === null ? undefined : patch;
  const out: Record<string, Json> = isObject(current) ? { ...current } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else {
      const merged = mergeState(out[k], v);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

const same = (a: Json | undefined, b: Json | undefined): boolean =>
  JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
const sortKeys = (v: Json | undefined): Json | undefined =>
  isObject(v)
    ? Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sortKeys(v[k])!]),
      )
    : Array.isArray(v)
      ? v.map((x) => sortKeys(x)!)
      : v;

export function deltaOf(
  desired: Json | undefined,
  reported: Json | undefined,
): Record<string, Json> | undefined {
  if (!isObject(desired)) return undefined;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(desired)) {
    const r = isObject(reported) ? reported[k] : undefined;
    if (isObject(v) && isObject(r)) {
      const d = deltaOf(v, r);
      if (d) out[k] = d;
    } else if (!same(v, r)) out[k] = v;
  }
  return Object.keys(out).length ? out : undefined;
}
