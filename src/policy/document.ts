import { E, ThingsteadError, type Described } from '../errors/index.js';

/**
 * The AWS IoT policy language (reference §9): parse and validate a policy document into a normalized
 * form. Every refusal is a MalformedPolicyException whose message starts with the JSON path of the
 * problem (`Statement[1].Resource[0]: ...`), so a user can find it.
 */

export type Effect = 'Allow' | 'Deny';

/** One condition test: `"StringEquals": { "iot:ClientId": ["a", "b"] }` gives one clause per key. */
export interface ConditionClause {
  /** As written, e.g. `ForAnyValue:StringLikeIfExists`. */
  readonly operator: string;
  /** Base operator without set qualifier and IfExists, e.g. `StringLike`. */
  readonly base: ConditionOperator;
  readonly qualifier: 'ForAllValues' | 'ForAnyValue' | null;
  readonly ifExists: boolean;
  readonly key: string;
  readonly values: readonly string[];
}

export interface PolicyStatement {
  /** 0-based position in the document's Statement list. */
  readonly index: number;
  readonly sid: string | undefined;
  readonly effect: Effect;
  /** Exactly one of action/notAction is set. */
  readonly action: readonly string[] | undefined;
  readonly notAction: readonly string[] | undefined;
  /** Exactly one of resource/notResource is set. */
  readonly resource: readonly string[] | undefined;
  readonly notResource: readonly string[] | undefined;
  readonly condition: readonly ConditionClause[];
}

export interface PolicyDocument {
  readonly version: string;
  readonly statements: readonly PolicyStatement[];
}

export const CONDITION_OPERATORS = [
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'NumericEquals',
  'NumericNotEquals',
  'NumericLessThan',
  'NumericLessThanEquals',
  'NumericGreaterThan',
  'NumericGreaterThanEquals',
  'DateEquals',
  'DateNotEquals',
  'DateLessThan',
  'DateLessThanEquals',
  'DateGreaterThan',
  'DateGreaterThanEquals',
  'Bool',
  'IpAddress',
  'NotIpAddress',
  'ArnEquals',
  'ArnNotEquals',
  'ArnLike',
  'ArnNotLike',
  'Null',
] as const;
export type ConditionOperator = (typeof CONDITION_OPERATORS)[number];

/** AWS: at most 2048 characters excluding whitespace (reference §3.11, §11). */
export const MAX_POLICY_CHARS = 2048;

const STATEMENT_KEYS = new Set([
  'Sid',
  'Effect',
  'Action',
  'NotAction',
  'Resource',
  'NotResource',
  'Condition',
]);
const TOP_KEYS = new Set(['Version', 'Statement', 'Id']);
const VERSIONS = new Set(['2012-10-17', '2008-10-17']);

/** Variables §9.4 defines; matched exactly (names are case-sensitive at AWS). */
const CERT_ATTRS = [
  'CommonName',
  'Organization',
  'OrganizationalUnit',
  'Country',
  'State',
  'Locality',
  'SerialNumber',
  'Title',
  'Surname',
  'GivenName',
  'Initials',
  'Pseudonym',
  'GenerationQualifier',
  'DistinguishedNameQualifier',
  'EmailAddress',
];
const ALT_NAMES = ['RFC822Name', 'DNSName', 'DirectoryName', 'UniformResourceIdentifier', 'IPAddress'];
const KNOWN_VARIABLE = new RegExp(
  '^(?:' +
    [
      'iot:ClientId',
      'aws:SourceIp',
      'aws:CurrentTime',
      'aws:EpochTime',
      'aws:SecureTransport',
      'iot:Connection\\.Thing\\.ThingName',
      'iot:Connection\\.Thing\\.ThingTypeName',
      'iot:Connection\\.Thing\\.IsAttached',
      'iot:Connection\\.Thing\\.Attributes\\[[^\\]]+\\]',
      `iot:Certificate\\.(?:Subject|Issuer)\\.(?:${CERT_ATTRS.join('|')})(?:\\.(?:[1-9]\\d*|List))?`,
      `iot:Certificate\\.(?:Subject|Issuer)\\.AlternativeName\\.(?:${ALT_NAMES.join('|')})(?:\\.(?:[1-9]\\d*|List))?`,
      'iot:Certificate\\.SerialNumber',
      'iot:Certificate\\.AvailableKeys',
      'iot:Certificate\\.Subject\\.List',
      'iot:Certificate\\.Issuer\\.List',
      'iot:ConnectAttributes',
      'iot:DomainName',
    ].join('|') +
    ')$',
);
/** IAM literal escapes: `${*}`, `${?}`, `${$}`. */
const ESCAPES = new Set(['*', '?', '$']);

/** Is `name` (the text inside `${...}`) a policy variable we resolve, or an escape? */
export function isKnownVariable(name: string): boolean {
  return ESCAPES.has(name) || KNOWN_VARIABLE.test(name);
}

/** The JSON path and text of a refusal, kept apart for `checkPolicyDocument`. */
const WHERE = Symbol('policyProblem');
type Located = ThingsteadError & { [WHERE]?: { path: string; message: string } };

/** MalformedPolicyException: `problem` (a PolicyDoc kind) at `path`, which leads the text when there is one. */
function fail(path: string, problem: Described<'MalformedPolicy'>): never {
  const { message } = problem;
  const text = path ? E.PolicyDocProblem.describe({ path, problem: message }).message : message;
  const err: Located = new ThingsteadError('MalformedPolicy', text, {}, problem.kind);
  err[WHERE] = { path, message };
  throw err;
}

/**
 * Where problems go. Without a sink (the API's parse) the first problem throws, as AWS answers one
 * MalformedPolicyException; with one (`checkPolicyDocument`) each part is checked on its own, so every
 * problem is reported at once.
 */
type Sink = ((err: ThingsteadError) => void) | undefined;

function attempt<T>(sink: Sink, f: () => T): T | undefined {
  if (!sink) return f();
  try {
    return f();
  } catch (err) {
    if (!(err instanceof ThingsteadError)) throw err;
    sink(err);
    return undefined;
  }
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Returns each `${...}` variable reference, failing on an unterminated `${` or an unknown name. */
export function checkVariables(text: string, path: string): void {
  let i = text.indexOf('${');
  while (i >= 0) {
    const end = text.indexOf('}', i + 2);
    if (end < 0) fail(path, E.PolicyDocVariableUnterminated.describe({ text: text.slice(i, i + 40) }));
    const name = text.slice(i + 2, end);
    if (!isKnownVariable(name)) {
      const lower = name.toLowerCase();
      const hint = ['iot:ClientId', 'iot:Connection.Thing.ThingName', 'aws:SourceIp'].find(
        (k) => k.toLowerCase() === lower,
      );
      fail(
        path,
        hint
          ? E.PolicyDocUnknownVariableHint.describe({ name, hint })
          : E.PolicyDocUnknownVariable.describe({ name }),
      );
    }
    i = text.indexOf('${', end + 1);
  }
}

function stringList(value: unknown, path: string, what: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) fail(path, E.PolicyDocStringList.describe({ what, type: typeName(value) }));
  if (list.length === 0) fail(path, E.PolicyDocListEmpty.describe({ what }));
  return list.map((v, i) => {
    if (typeof v !== 'string') fail(`${path}[${i}]`, E.PolicyDocItemType.describe({ type: typeName(v) }));
    if (v.length === 0) fail(`${path}[${i}]`, E.PolicyDocItemEmpty.describe());
    return v;
  });
}

const ACTION = /^(?:\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$/;

function parseActions(value: unknown, path: string, sink: Sink): string[] {
  const list = stringList(value, path, 'Action');
  list.forEach((a, i) => {
    const p = Array.isArray(value) ? `${path}[${i}]` : path;
    attempt(sink, () => {
      if (!ACTION.test(a)) fail(p, E.PolicyDocAction.describe({ action: a }));
    });
  });
  return list;
}

function parseResources(value: unknown, path: string, sink: Sink): string[] {
  const list = stringList(value, path, 'Resource');
  list.forEach((r, i) =>
    attempt(sink, () => checkResource(r, Array.isArray(value) ? `${path}[${i}]` : path)),
  );
  return list;
}

function checkResource(r: string, p: string): void {
  if (r !== '*' && !r.startsWith('arn:')) {
    fail(p, E.PolicyDocResource.describe({ resource: r }));
  }
  if (r.startsWith('arn:') && r.split(':').length < 6) {
    fail(p, E.PolicyDocArn.describe({ resource: r }));
  }
  checkVariables(r, p);
}

function parseCondition(value: unknown, path: string, sink: Sink): ConditionClause[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(path, E.PolicyDocConditionType.describe({ type: typeName(value) }));
  }
  const clauses: ConditionClause[] = [];
  for (const [operator, block] of Object.entries(value as Record<string, unknown>)) {
    attempt(sink, () => parseOperator(operator, block, `${path}.${operator}`, clauses));
  }
  return clauses;
}

function parseOperator(operator: string, block: unknown, opPath: string, clauses: ConditionClause[]): void {
  const m = /^(?:(ForAllValues|ForAnyValue):)?([A-Za-z]+?)(IfExists)?$/.exec(operator);
  const base = m?.[2] as ConditionOperator | undefined;
  if (!m || !base || !(CONDITION_OPERATORS as readonly string[]).includes(base)) {
    fail(opPath, E.PolicyDocConditionOperator.describe({ operator }));
  }
  if (base === 'Null' && m[3]) fail(opPath, E.PolicyDocNullIfExists.describe());
  if (typeof block !== 'object' || block === null || Array.isArray(block)) {
    fail(opPath, E.PolicyDocConditionBlock.describe({ type: typeName(block) }));
  }
  const entries = Object.entries(block as Record<string, unknown>);
  if (entries.length === 0) fail(opPath, E.PolicyDocConditionEmpty.describe());
  for (const [key, raw] of entries) {
    const keyPath = `${opPath}["${key}"]`;
    if (!/^[a-zA-Z0-9-]+:[^\s]+$/.test(key)) fail(keyPath, E.PolicyDocConditionKey.describe({ key }));
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) fail(keyPath, E.PolicyDocConditionValues.describe());
    const values = list.map((v, i) => {
      if (typeof v === 'string') {
        checkVariables(v, Array.isArray(raw) ? `${keyPath}[${i}]` : keyPath);
        return v;
      }
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      return fail(
        Array.isArray(raw) ? `${keyPath}[${i}]` : keyPath,
        E.PolicyDocItemType.describe({ type: typeName(v) }),
      );
    });
    if (base === 'Bool' || base === 'Null') {
      values.forEach((v, i) => {
        if (v !== 'true' && v !== 'false')
          fail(`${keyPath}[${i}]`, E.PolicyDocConditionBool.describe({ operator: base, value: v }));
      });
    }
    if (base.startsWith('Numeric')) {
      values.forEach((v, i) => {
        if (!v.includes('${') && !Number.isFinite(Number(v)))
          fail(`${keyPath}[${i}]`, E.PolicyDocConditionNumber.describe({ value: v }));
      });
    }
    clauses.push({
      operator,
      base,
      qualifier: (m[1] as ConditionClause['qualifier']) ?? null,
      ifExists: m[3] === 'IfExists',
      key,
      values,
    });
  }
}

function parseStatement(raw: unknown, index: number, path: string, sink?: Sink): PolicyStatement {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail(path, E.PolicyDocStatementNotObject.describe({ type: typeName(raw) }));
  }
  const s = raw as Record<string, unknown>;
  const check = (f: () => void) => attempt(sink, f);
  for (const key of Object.keys(s)) {
    check(() => {
      if (!STATEMENT_KEYS.has(key)) {
        fail(`${path}.${key}`, E.PolicyDocStatementElement.describe({ elements: [...STATEMENT_KEYS] }));
      }
    });
  }
  check(() => {
    if (s.Sid !== undefined && typeof s.Sid !== 'string')
      fail(`${path}.Sid`, E.PolicyDocNotString.describe());
  });
  check(() => {
    if (s.Effect === undefined) fail(`${path}.Effect`, E.PolicyDocEffectRequired.describe());
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') {
      fail(`${path}.Effect`, E.PolicyDocEffect.describe({ effect: String(JSON.stringify(s.Effect)) }));
    }
  });
  check(() => {
    if ((s.Action === undefined) === (s.NotAction === undefined)) {
      fail(path, E.PolicyDocActionOrNot.describe());
    }
  });
  check(() => {
    if ((s.Resource === undefined) === (s.NotResource === undefined)) {
      fail(path, E.PolicyDocResourceOrNot.describe());
    }
  });
  const part = <T>(value: unknown, f: () => T): T | undefined =>
    value === undefined ? undefined : attempt(sink, f);
  return {
    index,
    sid: s.Sid as string | undefined,
    effect: s.Effect as Effect,
    action: part(s.Action, () => parseActions(s.Action, `${path}.Action`, sink)),
    notAction: part(s.NotAction, () => parseActions(s.NotAction, `${path}.NotAction`, sink)),
    resource: part(s.Resource, () => parseResources(s.Resource, `${path}.Resource`, sink)),
    notResource: part(s.NotResource, () => parseResources(s.NotResource, `${path}.NotResource`, sink)),
    condition: part(s.Condition, () => parseCondition(s.Condition, `${path}.Condition`, sink)) ?? [],
  };
}

/**
 * Parse and validate a policy document given as the JSON string AWS stores.
 * Throws ThingsteadError('MalformedPolicy') naming the JSON path of the first problem.
 * @example parsePolicyDocument('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}')
 */
export function parsePolicyDocument(text: string): PolicyDocument {
  return parseDocumentWith(text, undefined);
}

function parseDocumentWith(text: string, sink: Sink): PolicyDocument {
  if (typeof text !== 'string' || text.trim() === '') fail('', E.PolicyDocEmpty.describe());
  const size = text.replace(/\s+/g, '').length;
  if (size > MAX_POLICY_CHARS) {
    fail('', E.PolicyDocTooLong.describe({ size, max: MAX_POLICY_CHARS }));
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail('', E.PolicyDocNotJson.describe({ reason: (err as Error).message }));
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    fail('', E.PolicyDocNotObject.describe({ type: typeName(doc) }));
  }
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    attempt(sink, () => {
      if (!TOP_KEYS.has(key)) fail(key, E.PolicyDocUnknownElement.describe());
    });
  }
  const version = d.Version ?? '2012-10-17';
  attempt(sink, () => {
    if (typeof version !== 'string' || !VERSIONS.has(version)) {
      fail('Version', E.PolicyDocVersion.describe({ version: String(JSON.stringify(d.Version)) }));
    }
  });
  if (d.Statement === undefined) fail('Statement', E.PolicyDocRequired.describe());
  const raw = Array.isArray(d.Statement) ? d.Statement : [d.Statement];
  if (raw.length === 0) fail('Statement', E.PolicyDocNoStatements.describe());
  const single = !Array.isArray(d.Statement);
  const statements: PolicyStatement[] = [];
  raw.forEach((s, i) => {
    const parsed = attempt(sink, () => parseStatement(s, i, single ? 'Statement' : `Statement[${i}]`, sink));
    if (parsed) statements.push(parsed);
  });
  return { version: version as string, statements };
}

/** One finding of `checkPolicyDocument`: where (JSON path, statement index) and what. */
export interface PolicyProblem {
  readonly severity: 'error' | 'warning';
  /** JSON path, e.g. `Statement[1].Action[0]`; empty for the document as a whole. */
  readonly path: string;
  /** 0-based statement index when the problem is inside a statement. */
  readonly statement: number | undefined;
  readonly message: string;
}

/**
 * The actions AWS IoT Core checks in device policies (reference §9.2). Anything else (a typo such as
 * `iot:Pubish`, a control-plane IAM action) never matches a device request.
 */
export const IOT_POLICY_ACTIONS = [
  'iot:Connect',
  'iot:Publish',
  'iot:RetainPublish',
  'iot:Subscribe',
  'iot:Receive',
  'iot:GetRetainedMessage',
  'iot:ListRetainedMessages',
  'iot:GetThingShadow',
  'iot:UpdateThingShadow',
  'iot:DeleteThingShadow',
  'iot:ListNamedShadowsForThing',
  'iot:DescribeJobExecution',
  'iot:GetPendingJobExecutions',
  'iot:StartNextPendingJobExecution',
  'iot:UpdateJobExecution',
  'iot:AssumeRoleWithCertificate',
] as const;

/** The resource type each action is checked against (reference §9.2). */
const ACTION_RESOURCE: Readonly<Record<string, string>> = {
  'iot:connect': 'client',
  'iot:publish': 'topic',
  'iot:retainpublish': 'topic',
  'iot:subscribe': 'topicfilter',
  'iot:receive': 'topic',
  'iot:getretainedmessage': 'topic',
  'iot:getthingshadow': 'thing',
  'iot:updatethingshadow': 'thing',
  'iot:deletethingshadow': 'thing',
  'iot:describejobexecution': 'thing',
  'iot:getpendingjobexecutions': 'thing',
  'iot:startnextpendingjobexecution': 'thing',
  'iot:updatejobexecution': 'thing',
  'iot:assumerolewithcertificate': 'rolealias',
};

/** AWS IoT ARN resource types (`arn:aws:iot:region:account:<type>/...`). */
export const IOT_RESOURCE_TYPES = [
  'topic',
  'topicfilter',
  'client',
  'thing',
  'thinggroup',
  'billinggroup',
  'thingtype',
  'cert',
  'cacert',
  'policy',
  'rolealias',
  'authorizer',
  'job',
  'jobtemplate',
  'rule',
  'destination',
  'dimension',
  'provisioningtemplate',
  'domainconfiguration',
  'index',
  'fleetmetric',
  'package',
] as const;

/** `*` and `?` as in policy Resource/Action strings (the whole string, case-insensitive for actions). */
function globTest(pattern: string, text: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(text);
}

/** Edit distance, for "did you mean" hints (short strings only). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = distance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestD) [best, bestD] = [c, dist];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

function statementOf(path: string): number | undefined {
  const m = /^Statement(?:\[(\d+)\])?/.exec(path);
  return m ? Number(m[1] ?? 0) : undefined;
}

/**
 * Check a policy document the way `thingstead policy validate` reports it: every error (what CreatePolicy
 * refuses with MalformedPolicyException) and every warning (accepted, but probably not what was meant:
 * actions AWS IoT does not check, unknown resource types, Subscribe on `topic/` ARNs), all at once, each
 * with its JSON path and statement index. CreatePolicy itself keeps AWS's behaviour: warnings are not
 * refusals (IAM-style grammar accepts any service:Action; reference §9.1).
 * @example checkPolicyDocument('{"Statement":{"Effect":"Allow","Action":"iot:Pubish","Resource":"*"}}')
 */
export function checkPolicyDocument(text: string): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const add = (severity: PolicyProblem['severity'], path: string, message: string) =>
    problems.push({ severity, path, statement: statementOf(path), message });
  const sink: Sink = (err) => {
    const where = (err as Located)[WHERE];
    add('error', where?.path ?? '', where?.message ?? err.message);
  };

  let statements: readonly PolicyStatement[] = [];
  attempt(sink, () => {
    statements = parseDocumentWith(text, sink).statements;
  });
  if (statements.length === 0) return problems;
  // Paths as written: `Statement` or `Statement[i]`, `Action` or `Action[j]`.
  const rawStatement = JSON.parse(text) as { Statement: unknown };
  const single = !Array.isArray(rawStatement.Statement);
  for (const s of statements) {
    const base = single ? 'Statement' : `Statement[${s.index}]`;
    const raw = (single ? rawStatement.Statement : (rawStatement.Statement as unknown[])[s.index]) as Record<
      string,
      unknown
    >;
    const at = (key: string) => (j: number) =>
      Array.isArray(raw[key]) ? `${base}.${key}[${j}]` : `${base}.${key}`;
    warnActions(s.action, at('Action'), add);
    warnActions(s.notAction, at('NotAction'), add);
    const types = [
      ...warnResources(s.resource, at('Resource'), add),
      ...warnResources(s.notResource, at('NotResource'), add),
    ];
    if (s.action && s.resource && !types.includes('*')) {
      for (const a of s.action) {
        const want = ACTION_RESOURCE[a.toLowerCase()];
        if (want && !types.some((t) => globTest(t, want))) {
          add(
            'warning',
            `${base}.Resource`,
            `${a} is checked against ${want}/... ARNs, but this statement names only ${[...new Set(types)].map((t) => `${t}/`).join(', ')} resources, so it never applies to ${a}`,
          );
        }
      }
    }
  }
  return problems;
}

type Add = (severity: PolicyProblem['severity'], path: string, message: string) => void;

function warnActions(list: readonly string[] | undefined, path: (i: number) => string, add: Add): void {
  list?.forEach((a, i) => {
    if (a === '*' || !ACTION.test(a)) return; // '*' is fine; a malformed one is already an error
    const p = path(i);
    const [service] = a.split(':');
    if (service?.toLowerCase() !== 'iot') {
      add(
        'warning',
        p,
        `"${a}" is not an AWS IoT action: IoT policies only check iot:* actions (reference §9.2)`,
      );
      return;
    }
    if (IOT_POLICY_ACTIONS.some((known) => globTest(a, known))) return;
    const hint = closest(a, IOT_POLICY_ACTIONS);
    add(
      'warning',
      p,
      `"${a}" is not an action AWS IoT checks in policies${hint ? ` (did you mean "${hint}"?)` : ''}; known: ${IOT_POLICY_ACTIONS.join(', ')}`,
    );
  });
}

/** Warns on unknown resource types; returns each resource's type ('*' for '*' or an unparsed one). */
function warnResources(list: readonly string[] | undefined, path: (i: number) => string, add: Add): string[] {
  const types: string[] = [];
  list?.forEach((r, i) => {
    const p = path(i);
    const parts = r.split(':');
    if (r === '*' || parts.length < 6) {
      types.push('*');
      return;
    }
    const service = parts[2]!;
    const rest = parts.slice(5).join(':');
    const type = rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : rest;
    if (service !== 'iot' && service !== '*') {
      add('warning', p, `"${r}" is not an AWS IoT resource (service "${service}"); write arn:aws:iot:...`);
      types.push('*');
      return;
    }
    types.push(type);
    if (/[*?]/.test(type) || (IOT_RESOURCE_TYPES as readonly string[]).includes(type)) return;
    const hint = closest(type, IOT_RESOURCE_TYPES);
    add(
      'warning',
      p,
      `unknown resource type "${type}"${hint ? ` (did you mean "${hint}/"?)` : ''}; AWS IoT types: topic, topicfilter, client, thing, cert, rolealias, ...`,
    );
  });
  return types;
}
