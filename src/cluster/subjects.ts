/**
 * MQTT topics as NATS subjects. Each topic level becomes one subject token, so NATS can match a node's
 * subscriptions by level: `+` becomes `*`, and `a/#` becomes `a.>` plus `a` (MQTT's `#` also matches the
 * parent level). Subjects are a superset match: the receiving node's topic trie decides exactly (the
 * `$`-topic rule of [MQTT-4.7.2-1], for one).
 *
 * Tokens: letters, digits, `_`, `-`, `$`, `:`, `=` and `@` pass as they are; every other byte is `%XX`
 * (UTF-8, upper-case hex), and an empty level is `%` alone, so every topic maps to one valid subject and
 * back. NATS forbids `.`, `*`, `>` and whitespace in tokens, and empty tokens.
 */

const PLAIN = /^[A-Za-z0-9_\-$:=@]+$/;

/** One topic level as a subject token. */
export function levelToken(level: string): string {
  if (level === '') return '%';
  if (PLAIN.test(level)) return level;
  let out = '';
  for (const byte of Buffer.from(level, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && PLAIN.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A subject token back to its topic level. */
export function tokenLevel(token: string): string {
  if (token === '%') return '';
  if (!token.includes('%')) return token;
  return Buffer.from(
    token.replace(/%([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
    'latin1',
  ).toString('utf8');
}

/** The subject a message on `topic` is published to, under `prefix` (e.g. `ts.thingstead.m`). */
export function topicSubject(prefix: string, topic: string): string {
  let out = prefix;
  for (const level of topic.split('/')) out += `.${levelToken(level)}`;
  return out;
}

/** The topic of a subject made by `topicSubject` with the same prefix. */
export function subjectTopic(prefix: string, subject: string): string {
  return subject
    .slice(prefix.length + 1)
    .split('.')
    .map(tokenLevel)
    .join('/');
}

/** The subjects to subscribe for an MQTT filter (two for `a/#`: `a.>` and `a`). */
export function filterSubjects(prefix: string, filter: string): string[] {
  const levels = filter.split('/');
  const tokens: string[] = [];
  for (const level of levels) {
    if (level === '#') {
      const parent = tokens.length ? `${prefix}.${tokens.join('.')}` : null;
      const all = `${prefix}.${[...tokens, '>'].join('.')}`;
      return parent === null ? [all] : [all, parent];
    }
    tokens.push(level === '+' ? '*' : levelToken(level));
  }
  return [`${prefix}.${tokens.join('.')}`];
}
