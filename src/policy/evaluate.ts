import { BlockList, isIP } from 'node:net';
import { contextValues, type AuthContext, type ContextValues } from './context.js';
import {
  parsePolicyDocument,
  type ConditionClause,
  type PolicyDocument,
  type PolicyStatement,
} from './document.js';
import {
  ALWAYS,
  NEVER,
  bindParts,
  compilePattern,
  globMatcher,
  matcherFor,
  type Matcher,
  type Part,
} from './pattern.js';

/**
 * Policy evaluation (reference §9.1): default deny; a request is allowed only if some statement of some
 * policy allows it and no statement denies it; an explicit Deny always wins; order does not matter.
 *
 * Three stages, each done as rarely as possible (CONVENTIONS #7):
 * - compilePolicy: when a policy version is created (actions and resource globs pre-split).
 * - bindPolicies: once per connection and policy generation (conditions evaluated, variables substituted).
 * - BoundPolicies.allowed: per request, through a bounded per-connection decision cache.
 */

/** Which statement of which policy, for explain() and TestAuthorization. */
export interface StatementRef {
  readonly policyName: string;
  readonly policyVersionId: string;
  readonly statementIndex: number;
  readonly sid: string | undefined;
  readonly effect: 'Allow' | 'Deny';
}

export interface CompiledPolicy {
  readonly name: string;
  readonly versionId: string;
  readonly document: PolicyDocument;
  /** The source JSON, as stored. */
  readonly text: string;
  readonly statements: readonly CompiledStatement[];
}

interface CompiledStatement {
  readonly ref: StatementRef;
  readonly statement: PolicyStatement;
  readonly actions: readonly Matcher[];
  readonly notAction: boolean;
  readonly resources: ReadonlyArray<readonly Part[]>;
  readonly notResource: boolean;
  readonly conditions: readonly CompiledCondition[];
}

interface CompiledCondition {
  readonly clause: ConditionClause;
  readonly values: ReadonlyArray<readonly Part[]>;
}

/**
 * Compile one policy version (parse + validate + pre-split patterns).
 * Throws MalformedPolicy with the JSON path of the problem.
 */
export function compilePolicy(name: string, versionId: string, text: string): CompiledPolicy {
  const document = parsePolicyDocument(text);
  return {
    name,
    versionId,
    document,
    text,
    statements: document.statements.map((s) => ({
      ref: {
        policyName: name,
        policyVersionId: versionId,
        statementIndex: s.index,
        sid: s.sid,
        effect: s.effect,
      },
      statement: s,
      actions: (s.action ?? s.notAction ?? []).map((a) => globMatcher(a, true)),
      notAction: s.notAction !== undefined,
      resources: (s.resource ?? s.notResource ?? []).map(compilePattern),
      notResource: s.notResource !== undefined,
      conditions: s.condition.map((clause) => ({ clause, values: clause.values.map(compilePattern) })),
    })),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Conditions (reference §9.5; IAM semantics)

const NEGATED = new Set([
  'StringNotEquals',
  'StringNotEqualsIgnoreCase',
  'StringNotLike',
  'NumericNotEquals',
  'DateNotEquals',
  'NotIpAddress',
  'ArnNotEquals',
  'ArnNotLike',
]);

function toTime(v: string): number {
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  return Date.parse(v);
}

/** Positive form of an operator: does actual `a` match the (bound) policy value? */
function positiveTest(
  base: string,
  values: ReadonlyArray<readonly Part[]>,
  vals: ContextValues,
): (a: string) => boolean {
  const bound = values.map((parts) => bindParts(parts, (n) => vals.variable(n)));
  const literal = bound.map((b) =>
    b ? b.map((p) => (p.k === 'lit' ? p.s : p.k === 'star' ? '*' : '?')).join('') : null,
  );
  const present = literal.filter((v): v is string => v !== null);
  switch (base) {
    case 'StringEquals':
    case 'StringNotEquals':
      return (a) => present.includes(a);
    case 'StringEqualsIgnoreCase':
    case 'StringNotEqualsIgnoreCase': {
      const lower = present.map((v) => v.toLowerCase());
      return (a) => lower.includes(a.toLowerCase());
    }
    case 'StringLike':
    case 'StringNotLike':
    case 'ArnEquals':
    case 'ArnNotEquals':
    case 'ArnLike':
    case 'ArnNotLike': {
      const matchers = bound.filter((b) => b !== null).map((b) => matcherFor(b));
      return (a) => matchers.some((m) => m(a));
    }
    case 'Bool':
      return (a) => present.includes(a.toLowerCase());
    case 'IpAddress':
    case 'NotIpAddress': {
      const list = new BlockList();
      for (const cidr of present) {
        const [addr = '', bits] = cidr.split('/');
        const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
        if (!isIP(addr)) continue;
        if (bits === undefined) list.addAddress(addr, type);
        else list.addSubnet(addr, Number(bits), type);
      }
      return (a) => (isIP(a) ? list.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4') : false);
    }
    default: {
      const numeric = base.startsWith('Numeric');
      const conv = numeric ? Number : toTime;
      const nums = present.map(conv).filter((n) => Number.isFinite(n));
      const op = base.replace(/^(Numeric|Date)/, '');
      const cmp: (x: number, y: number) => boolean =
        op === 'Equals' || op === 'NotEquals'
          ? (x, y) => x === y
          : op === 'LessThan'
            ? (x, y) => x < y
            : op === 'LessThanEquals'
              ? (x, y) => x <= y
              : op === 'GreaterThan'
                ? (x, y) => x > y
                : (x, y) => x >= y;
      return (a) => {
        const x = conv(a);
        return Number.isFinite(x) && nums.some((y) => cmp(x, y));
      };
    }
  }
}

function conditionHolds(c: CompiledCondition, vals: ContextValues): boolean {
  const { clause } = c;
  const actual = vals.get(clause.key);
  const absent = actual === undefined || actual.length === 0;
  if (clause.base === 'Null') return absent === (clause.values[0] === 'true');
  const negated = NEGATED.has(clause.base);
  if (absent) {
    if (clause.ifExists) return true;
    if (clause.qualifier === 'ForAllValues') return true;
    if (clause.qualifier === 'ForAnyValue') return false;
    return negated;
  }
  const pos = positiveTest(clause.base, c.values, vals);
  const one = (a: string) => (negated ? !pos(a) : pos(a));
  if (clause.qualifier === 'ForAllValues') return actual.every(one);
  if (clause.qualifier === 'ForAnyValue') return actual.some(one);
  return negated ? actual.every(one) : actual.some(one);
}

// ---------------------------------------------------------------------------------------------------------
// Binding and decisions

interface BoundStatement {
  readonly ref: StatementRef;
  readonly actions: readonly Matcher[];
  readonly notAction: boolean;
  readonly resources: readonly Matcher[];
  readonly notResource: boolean;
}

export type DecisionReason = 'allowed' | 'explicit-deny' | 'implicit-deny';

export interface Decision {
  readonly allowed: boolean;
  readonly reason: DecisionReason;
  /** The deciding statement: the Deny that matched, or the first Allow that matched. */
  readonly statement?: StatementRef | undefined;
  /** Every statement that matched the request (allows and denies). */
  readonly matched: readonly StatementRef[];
}

/** Max cached decisions per connection; the cache is cleared when full (bounded memory). */
const CACHE_LIMIT = 1024;

/**
 * The policies of one principal bound to one connection's context. `allowed()` is the hot-path check.
 * Immutable: a policy, attachment or context change makes a new one (generation counter in the caller).
 */
export class BoundPolicies {
  private readonly byAction = new Map<string, { deny: BoundStatement[]; allow: BoundStatement[] }>();
  private readonly cache = new Map<string, Map<string, boolean>>();
  private cached = 0;

  constructor(
    private readonly statements: readonly BoundStatement[],
    /** The policies bound, in attachment order. */
    readonly policies: readonly CompiledPolicy[],
  ) {}

  private forAction(action: string) {
    let entry = this.byAction.get(action);
    if (!entry) {
      const lower = action.toLowerCase();
      const applies = (s: BoundStatement) => s.actions.some((m) => m(lower)) !== s.notAction;
      const relevant = this.statements.filter(applies);
      entry = {
        deny: relevant.filter((s) => s.ref.effect === 'Deny'),
        allow: relevant.filter((s) => s.ref.effect === 'Allow'),
      };
      this.byAction.set(action, entry);
    }
    return entry;
  }

  /** Hot path: is `action` on `resource` (a full ARN) allowed? Cached per (action, resource). */
  allowed(action: string, resource: string): boolean {
    return this.allowedName(action, '', resource);
  }

  /**
   * Hot path without building the ARN on a cache hit: is `action` allowed on `arnPrefix + name`?
   * The cache is keyed by action and name, so one action must always use the same prefix.
   * @example bound.allowedName('iot:Publish', 'arn:aws:iot:us-east-1:123456789012:topic/', 'a/b')
   */
  allowedName(action: string, arnPrefix: string, name: string): boolean {
    let byName = this.cache.get(action);
    if (!byName) this.cache.set(action, (byName = new Map()));
    const hit = byName.get(name);
    if (hit !== undefined) return hit;
    const result = this.decide(action, arnPrefix + name, false).allowed;
    if (++this.cached > CACHE_LIMIT) {
      for (const m of this.cache.values()) m.clear();
      this.cached = 1;
    }
    byName.set(name, result);
    return result;
  }

  /** The full decision with the deciding statement (simulator, TestAuthorization, logs). */
  explain(action: string, resource: string): Decision {
    return this.decide(action, resource, true);
  }

  private decide(action: string, resource: string, all: boolean): Decision {
    const { deny, allow } = this.forAction(action);
    const hits = (s: BoundStatement) => s.resources.some((m) => m(resource)) !== s.notResource;
    const matched: StatementRef[] = [];
    let denied: StatementRef | undefined;
    for (const s of deny) {
      if (hits(s)) {
        denied ??= s.ref;
        matched.push(s.ref);
        if (!all) break;
      }
    }
    let allowedBy: StatementRef | undefined;
    if (!denied || all) {
      for (const s of allow) {
        if (hits(s)) {
          allowedBy ??= s.ref;
          matched.push(s.ref);
          if (!all) break;
        }
      }
    }
    if (denied) return { allowed: false, reason: 'explicit-deny', statement: denied, matched };
    if (allowedBy) return { allowed: true, reason: 'allowed', statement: allowedBy, matched };
    return { allowed: false, reason: 'implicit-deny', matched };
  }
}

/**
 * Bind policies to one request context: evaluate conditions, substitute variables as literals.
 * A resource whose variable cannot be resolved matches nothing; an Allow with such a NotResource entry
 * is dropped (an unresolvable variable only ever narrows what is allowed).
 * @example bindPolicies([compilePolicy('p', '1', doc)], { clientId: 'dev1' }).allowed('iot:Connect', arn)
 */
export function bindPolicies(policies: readonly CompiledPolicy[], ctx: AuthContext): BoundPolicies {
  const vals = contextValues(ctx);
  const resolve = (n: string) => vals.variable(n);
  const bound: BoundStatement[] = [];
  for (const policy of policies) {
    for (const s of policy.statements) {
      if (!s.conditions.every((c) => conditionHolds(c, vals))) continue;
      let unresolved = false;
      const resources = s.resources.map((parts) => {
        const b = bindParts(parts, resolve);
        if (!b) {
          unresolved = true;
          return NEVER;
        }
        return b.length === 1 && b[0]!.k === 'star' ? ALWAYS : matcherFor(b);
      });
      if (unresolved && s.notResource && s.ref.effect === 'Allow') continue;
      bound.push({
        ref: s.ref,
        actions: s.actions,
        notAction: s.notAction,
        resources,
        notResource: s.notResource,
      });
    }
  }
  return new BoundPolicies(bound, policies);
}

/** ARN builders for the resources of §9.2, in one account and region. */
export interface ArnScope {
  readonly region: string;
  readonly accountId: string;
}

export function resourceArn(
  scope: ArnScope,
  type: 'client' | 'topic' | 'topicfilter' | 'thing' | 'cert',
  name: string,
): string {
  return `arn:aws:iot:${scope.region}:${scope.accountId}:${type}/${name}`;
}
