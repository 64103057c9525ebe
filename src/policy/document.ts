import { ThingsteadError } from '../errors/index.js';

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

function fail(path: string, message: string): never {
  throw new ThingsteadError('MalformedPolicy', path ? `${path}: ${message}` : message);
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
    if (end < 0)
      fail(path, `unterminated policy variable starting at "${text.slice(i, i + 40)}" (missing "}")`);
    const name = text.slice(i + 2, end);
    if (!isKnownVariable(name)) {
      const lower = name.toLowerCase();
      const hint = ['iot:ClientId', 'iot:Connection.Thing.ThingName', 'aws:SourceIp'].find(
        (k) => k.toLowerCase() === lower,
      );
      fail(
        path,
        `unknown policy variable \${${name}}` +
          (hint
            ? ` (did you mean \${${hint}}?)`
            : ' (see the policy variables of AWS IoT, e.g. ${iot:ClientId})'),
      );
    }
    i = text.indexOf('${', end + 1);
  }
}

function stringList(value: unknown, path: string, what: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list))
    fail(path, `${what} must be a string or an array of strings, got ${typeName(value)}`);
  if (list.length === 0) fail(path, `${what} must not be empty`);
  return list.map((v, i) => {
    if (typeof v !== 'string') fail(`${path}[${i}]`, `must be a string, got ${typeName(v)}`);
    if (v.length === 0) fail(`${path}[${i}]`, 'must not be empty');
    return v;
  });
}

const ACTION = /^(?:\*|[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+)$/;

function parseActions(value: unknown, path: string, sink: Sink): string[] {
  const list = stringList(value, path, 'Action');
  list.forEach((a, i) => {
    const p = Array.isArray(value) ? `${path}[${i}]` : path;
    attempt(sink, () => {
      if (!ACTION.test(a))
        fail(p, `"${a}" is not an action: write service:Action, e.g. "iot:Publish" or "iot:*"`);
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
    fail(
      p,
      `"${r}" is not a resource: write "*" or an ARN such as "arn:aws:iot:us-east-1:123456789012:topic/a/b"`,
    );
  }
  if (r.startsWith('arn:') && r.split(':').length < 6) {
    fail(p, `"${r}" is not a valid ARN: expected arn:partition:service:region:account:resource`);
  }
  checkVariables(r, p);
}

function parseCondition(value: unknown, path: string, sink: Sink): ConditionClause[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(path, `Condition must be an object of operators, got ${typeName(value)}`);
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
    fail(opPath, `unknown condition operator "${operator}" (e.g. StringEquals, StringLike, Bool, IpAddress)`);
  }
  if (base === 'Null' && m[3]) fail(opPath, 'Null cannot be combined with IfExists');
  if (typeof block !== 'object' || block === null || Array.isArray(block)) {
    fail(opPath, `must be an object of condition keys, got ${typeName(block)}`);
  }
  const entries = Object.entries(block as Record<string, unknown>);
  if (entries.length === 0) fail(opPath, 'must name at least one condition key');
  for (const [key, raw] of entries) {
    const keyPath = `${opPath}["${key}"]`;
    if (!/^[a-zA-Z0-9-]+:[^\s]+$/.test(key))
      fail(keyPath, `"${key}" is not a condition key (e.g. "iot:ClientId")`);
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) fail(keyPath, 'must list at least one value');
    const values = list.map((v, i) => {
      if (typeof v === 'string') {
        checkVariables(v, Array.isArray(raw) ? `${keyPath}[${i}]` : keyPath);
        return v;
      }
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      return fail(Array.isArray(raw) ? `${keyPath}[${i}]` : keyPath, `must be a string, got ${typeName(v)}`);
    });
    if (base === 'Bool' || base === 'Null') {
      values.forEach((v, i) => {
        if (v !== 'true' && v !== 'false')
          fail(`${keyPath}[${i}]`, `${base} takes "true" or "false", got "${v}"`);
      });
    }
    if (base.startsWith('Numeric')) {
      values.forEach((v, i) => {
        if (!v.includes('${') && !Number.isFinite(Number(v)))
          fail(`${keyPath}[${i}]`, `"${v}" is not a number`);
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
    fail(path, `a statement must be an object, got ${typeName(raw)}`);
  }
  const s = raw as Record<string, unknown>;
  const check = (f: () => void) => attempt(sink, f);
  for (const key of Object.keys(s)) {
    check(() => {
      if (!STATEMENT_KEYS.has(key)) {
        fail(
          `${path}.${key}`,
          `unknown statement element (expected one of ${[...STATEMENT_KEYS].join(', ')})`,
        );
      }
    });
  }
  check(() => {
    if (s.Sid !== undefined && typeof s.Sid !== 'string') fail(`${path}.Sid`, 'must be a string');
  });
  check(() => {
    if (s.Effect === undefined) fail(`${path}.Effect`, 'is required ("Allow" or "Deny")');
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') {
      fail(`${path}.Effect`, `must be "Allow" or "Deny", got ${JSON.stringify(s.Effect)}`);
    }
  });
  check(() => {
    if ((s.Action === undefined) === (s.NotAction === undefined)) {
      fail(path, 'a statement needs exactly one of Action or NotAction');
    }
  });
  check(() => {
    if ((s.Resource === undefined) === (s.NotResource === undefined)) {
      fail(path, 'a statement needs exactly one of Resource or NotResource');
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
  if (typeof text !== 'string' || text.trim() === '') fail('', 'the policy document is empty');
  const size = text.replace(/\s+/g, '').length;
  if (size > MAX_POLICY_CHARS) {
    fail(
      '',
      `the policy document has ${size} characters excluding whitespace; the maximum is ${MAX_POLICY_CHARS}`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail('', `the policy document is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    fail('', `the policy document must be a JSON object, got ${typeName(doc)}`);
  }
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!TOP_KEYS.has(key)) fail(key, 'unknown top-level element (expected Version, Statement, Id)');
  }
  const version = d.Version ?? '2012-10-17';
  if (typeof version !== 'string' || !VERSIONS.has(version)) {
    fail('Version', `must be "2012-10-17", got ${JSON.stringify(d.Version)}`);
  }
  if (d.Statement === undefined) fail('Statement', 'is required');
  const raw = Array.isArray(d.Statement) ? d.Statement : [d.Statement];
  if (raw.length === 0) fail('Statement', 'must contain at least one statement');
  const single = !Array.isArray(d.Statement);
  return {
    version,
    statements: raw.map((s, i) => parseStatement(s, i, single ? 'Statement' : `Statement[${i}]`)),
  };
}
