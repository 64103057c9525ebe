import type { AwsOperation, AwsRequest } from '../api/index.js';
import { E } from '../errors/index.js';
import { parseTagging, type ResourceTags } from '../tags/index.js';
import type { RulesEngine } from './engine.js';
import { RULE_NAME_CONSTRAINT, type TopicRule, type TopicRulePayload } from './types.js';

/** Epoch seconds: the AWS SDKs parse control-plane timestamps as seconds (reference §12.1). */
const seconds = (ms: number) => Math.floor(ms / 1000);

/** The body of Create/ReplaceTopicRule is the bare TopicRulePayload (reference §2, §12.7). */
function payloadOf(req: AwsRequest): TopicRulePayload {
  const b = req.body ?? {};
  if ('topicRulePayload' in b && !('sql' in b)) throw E.RulePayloadWrapped();
  if (b.description !== undefined && typeof b.description !== 'string')
    throw E.MemberType({ member: 'topicRulePayload.description', expected: 'a string' });
  if (b.ruleDisabled !== undefined && typeof b.ruleDisabled !== 'boolean')
    throw E.MemberType({ member: 'topicRulePayload.ruleDisabled', expected: 'a boolean' });
  if (b.awsIotSqlVersion !== undefined && typeof b.awsIotSqlVersion !== 'string')
    throw E.MemberType({ member: 'topicRulePayload.awsIotSqlVersion', expected: 'a string' });
  return {
    sql: b.sql as string,
    actions: b.actions as TopicRulePayload['actions'],
    ...(b.description !== undefined ? { description: b.description as string } : {}),
    ...(b.ruleDisabled !== undefined ? { ruleDisabled: b.ruleDisabled as boolean } : {}),
    ...(b.awsIotSqlVersion !== undefined ? { awsIotSqlVersion: b.awsIotSqlVersion as string } : {}),
    ...(b.errorAction !== undefined ? { errorAction: b.errorAction as TopicRulePayload['errorAction'] } : {}),
  };
}

function ruleName(req: AwsRequest): string {
  const name = req.params.ruleName ?? '';
  if (!/^[a-zA-Z0-9_]+$/.test(name) || name.length > 128)
    throw E.MemberConstraint({ value: name, member: 'ruleName', constraint: RULE_NAME_CONSTRAINT });
  return name;
}

/** MQTT filter match, for ListTopicRules ?topic= (a rule listens to the topic if its FROM matches it). */
function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i > 0 || !topic.startsWith('$');
    if (i >= t.length) return false;
    if (f[i] === '+') {
      if (i === 0 && t[0]!.startsWith('$')) return false;
      continue;
    }
    if (f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function ruleBody(rule: TopicRule) {
  return {
    ruleName: rule.ruleName,
    sql: rule.sql,
    ...(rule.description !== undefined ? { description: rule.description } : {}),
    createdAt: seconds(rule.createdAt),
    actions: rule.actions,
    ruleDisabled: rule.ruleDisabled === true,
    awsIotSqlVersion: rule.awsIotSqlVersion,
    ...(rule.errorAction ? { errorAction: rule.errorAction } : {}),
  };
}

/**
 * Topic rule operations (reference §3.4) plus Thingstead extensions under the same signing name:
 * POST /rules/{ruleName}/test, GET /rules/{ruleName}/metrics, GET /rules/{ruleName}/trace.
 */
export function rulesOperations(engine: RulesEngine, options: { tags?: ResourceTags } = {}): AwsOperation[] {
  return [
    {
      name: 'CreateTopicRule',
      service: 'iot',
      method: 'POST',
      path: '/rules/{ruleName}',
      async handler(req) {
        const name = ruleName(req);
        // Tags travel in the x-amz-tagging header, URL query format (reference §2).
        const header = req.headers['x-amz-tagging'];
        const tags = parseTagging(Array.isArray(header) ? header.join('&') : header);
        options.tags?.check(tags);
        await engine.createRule(name, payloadOf(req));
        await options.tags?.add(engine.ruleArn(name), tags);
        return {};
      },
    },
    {
      name: 'GetTopicRule',
      service: 'iot',
      method: 'GET',
      path: '/rules/{ruleName}',
      readOnly: true,
      async handler(req) {
        const rule = await engine.getRule(ruleName(req));
        return { ruleArn: engine.ruleArn(rule.ruleName), rule: ruleBody(rule) };
      },
    },
    {
      name: 'ListTopicRules',
      service: 'iot',
      method: 'GET',
      path: '/rules',
      readOnly: true,
      async handler(req) {
        const q = req.query;
        const max = q.maxResults === undefined ? 1000 : Number(q.maxResults);
        if (!Number.isInteger(max) || max < 1 || max > 10_000)
          throw E.MemberConstraint({
            value: String(q.maxResults),
            member: 'maxResults',
            constraint: 'Member must have value between 1 and 10000',
          });
        let rules = await engine.store.list();
        if (q.topic)
          rules = rules.filter(
            (r) =>
              r.topicPattern === q.topic ||
              (r.topicPattern !== null && filterMatches(r.topicPattern, q.topic!)),
          );
        if (q.ruleDisabled !== undefined)
          rules = rules.filter((r) => String(r.ruleDisabled === true) === q.ruleDisabled);
        const after = q.nextToken ? Buffer.from(q.nextToken, 'base64').toString('utf8') : null;
        if (after !== null) rules = rules.filter((r) => r.ruleName > after);
        const page = rules.slice(0, max);
        return {
          rules: page.map((r) => ({
            ruleArn: engine.ruleArn(r.ruleName),
            ruleName: r.ruleName,
            topicPattern: r.topicPattern ?? '',
            createdAt: seconds(r.createdAt),
            ruleDisabled: r.ruleDisabled === true,
          })),
          ...(rules.length > max
            ? { nextToken: Buffer.from(page[page.length - 1]!.ruleName).toString('base64') }
            : {}),
        };
      },
    },
    {
      name: 'ReplaceTopicRule',
      service: 'iot',
      method: 'PATCH',
      path: '/rules/{ruleName}',
      async handler(req) {
        await engine.replaceRule(ruleName(req), payloadOf(req));
        return {};
      },
    },
    {
      name: 'DeleteTopicRule',
      service: 'iot',
      method: 'DELETE',
      path: '/rules/{ruleName}',
      async handler(req) {
        const name = ruleName(req);
        await engine.deleteRule(name);
        await options.tags?.removeAll(engine.ruleArn(name));
        return {};
      },
    },
    {
      name: 'EnableTopicRule',
      service: 'iot',
      method: 'POST',
      path: '/rules/{ruleName}/enable',
      async handler(req) {
        await engine.setEnabled(ruleName(req), true);
        return {};
      },
    },
    {
      name: 'DisableTopicRule',
      service: 'iot',
      method: 'POST',
      path: '/rules/{ruleName}/disable',
      async handler(req) {
        await engine.setEnabled(ruleName(req), false);
        return {};
      },
    },
    {
      // Thingstead: evaluate a rule on a sample message; nothing is delivered, so read-only callers may use it.
      name: 'TestTopicRule',
      service: 'iot',
      method: 'POST',
      path: '/rules/{ruleName}/test',
      readOnly: true,
      async handler(req) {
        const b = req.body ?? {};
        const payload =
          typeof b.payloadBase64 === 'string'
            ? Buffer.from(b.payloadBase64, 'base64')
            : typeof b.payload === 'string'
              ? Buffer.from(b.payload)
              : b.payload !== undefined
                ? Buffer.from(JSON.stringify(b.payload))
                : Buffer.alloc(0);
        const result = await engine.test(ruleName(req), {
          payload,
          ...(typeof b.topic === 'string' ? { topic: b.topic } : {}),
          ...(typeof b.clientId === 'string' ? { clientId: b.clientId } : {}),
          ...(typeof b.principal === 'string' ? { principal: b.principal } : {}),
        });
        return { ...result };
      },
    },
    {
      name: 'GetTopicRuleMetrics',
      service: 'iot',
      method: 'GET',
      path: '/rules/{ruleName}/metrics',
      readOnly: true,
      async handler(req) {
        const name = ruleName(req);
        await engine.getRule(name);
        return { ruleName: name, metrics: engine.stats(name) };
      },
    },
    {
      name: 'GetTopicRuleTrace',
      service: 'iot',
      method: 'GET',
      path: '/rules/{ruleName}/trace',
      readOnly: true,
      async handler(req) {
        const name = ruleName(req);
        await engine.getRule(name);
        return { ruleName: name, trace: engine.traces(name) };
      },
    },
  ];
}
