/**
 * parseTemplate: a provisioning template body (JSON text) to a checked ParsedTemplate, or every error found,
 * each with its path. What is refused here is refused at CreateProvisioningTemplate /
 * CreateProvisioningTemplateVersion time (InvalidRequestException naming the path), so a device never meets a
 * template that cannot work for any parameters.
 *
 * Contract: pure, no I/O; collects all errors rather than stopping at the first (capped at MAX_ERRORS).
 */
import {
  CERTIFICATE_PARAMETERS,
  checkCondition,
  checkExpression,
  type CheckScope,
  type Mappings,
} from './template-intrinsics.js';
import { readJson, type JsonValue } from './template-json.js';
import { MAX_MATCHED_LENGTH, patternProblem } from './template-pattern.js';
import type {
  OverrideAction,
  ParameterDeclaration,
  ParameterType,
  ParsedTemplate,
  ParseResult,
  ResourceDeclaration,
  ResourceType,
  TemplateError,
} from './template.js';

/** Stop collecting after this many errors (the rest are usually consequences of the first). */
const MAX_ERRORS = 50;
/** AWS IoT attaches at most 10 policies to a certificate; a template may declare that many. */
export const MAX_POLICIES = 10;

const TOP_LEVEL = ['Parameters', 'Mappings', 'Conditions', 'Resources', 'DeviceConfiguration', 'Description'];
const PARAMETER_TYPES: readonly ParameterType[] = [
  'String',
  'Number',
  'List<String>',
  'CommaDelimitedList',
  'List<Number>',
];
const PARAMETER_KEYS = [
  'Type',
  'Default',
  'Description',
  'AllowedValues',
  'AllowedPattern',
  'MinLength',
  'MaxLength',
  'MinValue',
  'MaxValue',
  'ConstraintDescription',
];
const RESOURCE_TYPES: readonly ResourceType[] = [
  'AWS::IoT::Thing',
  'AWS::IoT::Certificate',
  'AWS::IoT::Policy',
];
const RESOURCE_KEYS = ['Type', 'Properties', 'OverrideSettings', 'Condition'];
const NAME = /^[A-Za-z0-9_-]{1,128}$/;
const PARAMETER_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** The OverrideSettings each resource type takes, and the actions each setting allows. */
const OVERRIDES: Record<ResourceType, Record<string, readonly OverrideAction[]>> = {
  'AWS::IoT::Thing': {
    AttributePayload: ['MERGE', 'REPLACE', 'DO_NOTHING', 'FAIL'],
    ThingTypeName: ['REPLACE', 'DO_NOTHING', 'FAIL'],
    ThingGroups: ['MERGE', 'REPLACE', 'DO_NOTHING', 'FAIL'],
  },
  'AWS::IoT::Certificate': { Status: ['REPLACE', 'DO_NOTHING', 'FAIL'] },
  'AWS::IoT::Policy': {},
};

/** Properties of each resource type: the kind of value each must give. */
const PROPERTIES: Record<ResourceType, Record<string, 'string' | 'list' | 'map' | 'any'>> = {
  'AWS::IoT::Thing': {
    ThingName: 'string',
    AttributePayload: 'map',
    ThingTypeName: 'string',
    ThingGroups: 'list',
    BillingGroup: 'string',
  },
  'AWS::IoT::Certificate': {
    CertificateId: 'string',
    CertificatePem: 'string',
    CACertificatePem: 'string',
    CertificateSigningRequest: 'string',
    Status: 'string',
  },
  'AWS::IoT::Policy': { PolicyName: 'string', PolicyDocument: 'any' },
};

/** Properties AWS has that Thingstead does not (refused with this reason rather than silently ignored). */
const UNSUPPORTED: Record<string, string> = {
  PackageVersions: 'PackageVersions (software package versions) is not supported by Thingstead',
  CertificateMode: 'CertificateMode is not supported by Thingstead (certificates are always DEFAULT mode)',
};

const isObject = (v: unknown): v is Record<string, JsonValue> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

class Collector {
  readonly errors: TemplateError[] = [];
  add(path: string, message: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push({ path, message });
  }
  unknownKeys(obj: Record<string, JsonValue>, allowed: readonly string[], path: string, what: string): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const reason = UNSUPPORTED[key];
      this.add(join(path, key), reason ?? `Unknown key '${key}' in ${what}; allowed: ${allowed.join(', ')}`);
    }
  }
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/**
 * Parse and check a template body. Errors carry a path into the template (`Resources.thing.Properties...`);
 * a JSON syntax error has path '' and its line and column.
 * @example const r = parseTemplate(body); if (!r.ok) throw E.InvalidTemplate({ path: r.errors[0].path, ... });
 */
export function parseTemplate(body: string): ParseResult {
  const read = readJson(body);
  if (!read.ok) {
    return {
      ok: false,
      errors: [
        {
          path: '',
          message: `The template is not valid JSON: ${read.message} (line ${read.line}, column ${read.column})`,
          line: read.line,
          column: read.column,
        },
      ],
    };
  }
  const c = new Collector();
  const doc = read.value;
  if (!isObject(doc)) {
    c.add(
      '',
      'A template is a JSON object with Parameters, Mappings, Conditions, Resources and DeviceConfiguration',
    );
    return { ok: false, errors: c.errors };
  }
  c.unknownKeys(doc, TOP_LEVEL, '', 'the template');
  if (doc.Description !== undefined && typeof doc.Description !== 'string') {
    c.add('Description', 'Description must be a string');
  }
  const parameters = parseParameters(doc.Parameters, c);
  const mappings = parseMappings(doc.Mappings, c);
  const conditionBodies = sectionObject(doc.Conditions, 'Conditions', c);
  const resourceBodies = sectionObject(doc.Resources, 'Resources', c, true);
  const scope: CheckScope & { resources: Set<string> } = {
    parameters: new Map(
      parameters.map((p) => [p.name, p.type === 'String' || p.type === 'Number' ? 'string' : 'list']),
    ),
    resources: new Set(),
    conditions: new Set(Object.keys(conditionBodies)),
    mappings,
    errors: [],
  };
  const resources = declareResources(resourceBodies, c, scope);
  checkConditions(conditionBodies, scope, c);
  for (const r of resources) checkResource(r, scope, c);
  checkNameCycles(resources, c);
  const deviceConfiguration = sectionObject(doc.DeviceConfiguration, 'DeviceConfiguration', c);
  for (const [key, value] of Object.entries(deviceConfiguration)) {
    if (key === '') c.add('DeviceConfiguration', 'DeviceConfiguration keys must not be empty');
    checkExpression(value, `DeviceConfiguration.${key}`, 'string', scope, true);
  }
  for (const e of scope.errors) c.add(e.path, e.message);
  if (c.errors.length > 0) return { ok: false, errors: c.errors };
  const ofType = (t: ResourceType) => resources.filter((r) => r.type === t);
  const template: ParsedTemplate = {
    ...(typeof doc.Description === 'string' ? { description: doc.Description } : {}),
    parameters,
    mappings,
    conditions: conditionBodies,
    resources,
    deviceConfiguration,
    ...(ofType('AWS::IoT::Thing')[0] ? { thingLogicalId: ofType('AWS::IoT::Thing')[0]!.logicalId } : {}),
    ...(ofType('AWS::IoT::Certificate')[0]
      ? { certificateLogicalId: ofType('AWS::IoT::Certificate')[0]!.logicalId }
      : {}),
  };
  return { ok: true, template };
}

function sectionObject(
  value: JsonValue | undefined,
  path: string,
  c: Collector,
  required = false,
): Record<string, JsonValue> {
  if (value === undefined) {
    if (required) c.add(path, `The template needs a ${path} section (an object of logical id to resource)`);
    return {};
  }
  if (!isObject(value)) {
    c.add(path, `${path} must be an object`);
    return {};
  }
  return value;
}

function parseParameters(section: JsonValue | undefined, c: Collector): ParameterDeclaration[] {
  const out: ParameterDeclaration[] = [];
  for (const [name, decl] of Object.entries(sectionObject(section, 'Parameters', c))) {
    const path = `Parameters.${name}`;
    if (name.startsWith('AWS::')) {
      if (CERTIFICATE_PARAMETERS[name] === undefined) {
        c.add(
          path,
          `'${name}' is reserved: the AWS:: parameters are ${Object.keys(CERTIFICATE_PARAMETERS).join(', ')}`,
        );
        continue;
      }
    } else if (!PARAMETER_NAME.test(name)) {
      c.add(path, 'A parameter name is 1 to 128 characters of A-Z a-z 0-9 _ . -');
      continue;
    }
    if (!isObject(decl)) {
      c.add(path, 'A parameter is an object such as {"Type": "String"}');
      continue;
    }
    c.unknownKeys(decl, PARAMETER_KEYS, path, 'a parameter');
    const parsed = parseParameter(name, decl, path, c);
    if (parsed) out.push(parsed);
  }
  return out;
}

function parseParameter(
  name: string,
  decl: Record<string, JsonValue>,
  path: string,
  c: Collector,
): ParameterDeclaration | null {
  const type = decl.Type;
  if (typeof type !== 'string' || !PARAMETER_TYPES.includes(type as ParameterType)) {
    c.add(join(path, 'Type'), `Type must be one of ${PARAMETER_TYPES.join(', ')}`);
    return null;
  }
  const p: ParameterDeclaration = { name, type: type as ParameterType };
  const text = (key: string): string | undefined => {
    const v = decl[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && key === 'Default') return String(v);
    c.add(join(path, key), `${key} must be a string`);
    return undefined;
  };
  const count = (key: string): number | undefined => {
    const v = decl[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n === 'number' && Number.isFinite(n)) return n;
    c.add(join(path, key), `${key} must be a number`);
    return undefined;
  };
  const description = text('Description');
  const constraintDescription = text('ConstraintDescription');
  const allowedPattern = text('AllowedPattern');
  if (description !== undefined) p.description = description;
  if (constraintDescription !== undefined) p.constraintDescription = constraintDescription;
  if (allowedPattern !== undefined) {
    try {
      new RegExp(`^(?:${allowedPattern})$`, 'u');
      // A device's parameter value is matched against it with no time limit: refuse unsafe shapes here.
      const unsafe = patternProblem(allowedPattern);
      if (unsafe === null) p.allowedPattern = allowedPattern;
      else c.add(join(path, 'AllowedPattern'), `AllowedPattern is refused: ${unsafe}`);
    } catch (err) {
      c.add(
        join(path, 'AllowedPattern'),
        `AllowedPattern is not a valid regular expression: ${(err as Error).message}`,
      );
    }
  }
  const allowed = decl.AllowedValues;
  if (allowed !== undefined) {
    if (
      !Array.isArray(allowed) ||
      allowed.length === 0 ||
      !allowed.every((v) => typeof v === 'string' || typeof v === 'number')
    ) {
      c.add(join(path, 'AllowedValues'), 'AllowedValues must be a non-empty list of strings');
    } else {
      p.allowedValues = allowed.map(String);
    }
  }
  for (const key of ['MinLength', 'MaxLength', 'MinValue', 'MaxValue'] as const) {
    const n = count(key);
    if (n === undefined) continue;
    const numeric = key === 'MinValue' || key === 'MaxValue';
    if (numeric !== (p.type === 'Number' || p.type === 'List<Number>')) {
      c.add(
        join(path, key),
        `${key} applies to ${numeric ? 'Number and List<Number>' : 'String and list'} parameters only`,
      );
    } else if (!numeric && (!Number.isInteger(n) || n < 0)) {
      c.add(join(path, key), `${key} must be a whole number from 0`);
    } else {
      p[
        key === 'MinLength'
          ? 'minLength'
          : key === 'MaxLength'
            ? 'maxLength'
            : key === 'MinValue'
              ? 'minValue'
              : 'maxValue'
      ] = n;
    }
  }
  const dflt = text('Default');
  if (dflt !== undefined) {
    const problem = parameterProblem(p, dflt);
    if (problem) c.add(join(path, 'Default'), `The default value ${problem}`);
    else p.default = dflt;
  }
  return p;
}

/**
 * Why a value does not satisfy a parameter's declaration (its Type and constraints), or null when it does.
 * List types are comma-separated; each item is checked.
 */
export function parameterProblem(p: ParameterDeclaration, value: string): string | null {
  const items = p.type === 'String' || p.type === 'Number' ? [value] : value.split(',').map((s) => s.trim());
  const numeric = p.type === 'Number' || p.type === 'List<Number>';
  const explain = p.constraintDescription ? ` (${p.constraintDescription})` : '';
  for (const item of items) {
    if (numeric && (item.trim() === '' || !Number.isFinite(Number(item)))) return `'${item}' is not a number`;
    if (p.allowedValues && !p.allowedValues.includes(item)) {
      return `'${item}' is not one of the allowed values ${p.allowedValues.join(', ')}${explain}`;
    }
    if (p.allowedPattern !== undefined && item.length > MAX_MATCHED_LENGTH)
      return `'${item.slice(0, 32)}...' is longer than ${MAX_MATCHED_LENGTH} characters, the most an AllowedPattern is tested on`;
    if (p.allowedPattern !== undefined && !new RegExp(`^(?:${p.allowedPattern})$`, 'u').test(item)) {
      return `'${item}' does not match the pattern ${p.allowedPattern}${explain}`;
    }
    if (p.minLength !== undefined && item.length < p.minLength)
      return `'${item}' is shorter than ${p.minLength} characters${explain}`;
    if (p.maxLength !== undefined && item.length > p.maxLength)
      return `is longer than ${p.maxLength} characters${explain}`;
    if (p.minValue !== undefined && Number(item) < p.minValue)
      return `${item} is below the minimum ${p.minValue}${explain}`;
    if (p.maxValue !== undefined && Number(item) > p.maxValue)
      return `${item} is above the maximum ${p.maxValue}${explain}`;
  }
  return null;
}

function parseMappings(section: JsonValue | undefined, c: Collector): Mappings {
  const out: Record<string, Record<string, Record<string, string | string[]>>> = {};
  for (const [name, map] of Object.entries(sectionObject(section, 'Mappings', c))) {
    const path = `Mappings.${name}`;
    if (!isObject(map)) {
      c.add(path, 'A mapping is an object of keys to objects of keys to values');
      continue;
    }
    const top: Record<string, Record<string, string | string[]>> = {};
    for (const [key, entry] of Object.entries(map)) {
      if (!isObject(entry)) {
        c.add(
          `${path}.${key}`,
          'Each top-level key of a mapping holds an object of second-level keys to values',
        );
        continue;
      }
      const second: Record<string, string | string[]> = {};
      for (const [k2, v] of Object.entries(entry)) {
        if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
          Object.defineProperty(second, k2, { value: v, enumerable: true });
        } else {
          c.add(
            `${path}.${key}.${k2}`,
            'A mapping value is a string or a list of strings (no intrinsic functions)',
          );
        }
      }
      Object.defineProperty(top, key, { value: second, enumerable: true });
    }
    Object.defineProperty(out, name, { value: top, enumerable: true });
  }
  return out;
}

function declareResources(
  bodies: Record<string, JsonValue>,
  c: Collector,
  scope: CheckScope & { resources: Set<string> },
): ResourceDeclaration[] {
  const out: ResourceDeclaration[] = [];
  const seen: Partial<Record<ResourceType, string>> = {};
  let policies = 0;
  for (const [logicalId, body] of Object.entries(bodies)) {
    const path = `Resources.${logicalId}`;
    if (!NAME.test(logicalId)) {
      c.add(path, 'A resource logical id is 1 to 128 characters of A-Z a-z 0-9 _ -');
      continue;
    }
    if (scope.parameters.has(logicalId) || CERTIFICATE_PARAMETERS[logicalId] !== undefined) {
      c.add(path, `'${logicalId}' is also a parameter name; a Ref to it would be ambiguous`);
      continue;
    }
    if (!isObject(body)) {
      c.add(path, 'A resource is an object with Type and Properties');
      continue;
    }
    c.unknownKeys(body, RESOURCE_KEYS, path, 'a resource');
    const type = body.Type;
    if (typeof type !== 'string' || !RESOURCE_TYPES.includes(type as ResourceType)) {
      c.add(
        join(path, 'Type'),
        `Unknown resource type ${JSON.stringify(type ?? null)}; allowed: ${RESOURCE_TYPES.join(', ')}`,
      );
      continue;
    }
    const rtype = type as ResourceType;
    if (rtype === 'AWS::IoT::Policy') {
      if (++policies > MAX_POLICIES) c.add(path, `A template may declare at most ${MAX_POLICIES} policies`);
    } else if (seen[rtype]) {
      c.add(path, `A template declares at most one ${rtype} (already declared: ${seen[rtype]})`);
      continue;
    } else {
      seen[rtype] = logicalId;
    }
    const properties = body.Properties;
    if (!isObject(properties)) {
      c.add(join(path, 'Properties'), 'Properties must be an object');
      continue;
    }
    const overrides = body.OverrideSettings;
    const r: ResourceDeclaration = {
      logicalId,
      type: rtype,
      properties,
      overrideSettings: parseOverrides(rtype, overrides, join(path, 'OverrideSettings'), c),
    };
    if (body.Condition !== undefined) {
      if (typeof body.Condition !== 'string' || !scope.conditions.has(body.Condition)) {
        c.add(
          join(path, 'Condition'),
          `Condition must name a condition declared in the Conditions section${
            scope.conditions.size ? ` (declared: ${[...scope.conditions].join(', ')})` : ''
          }`,
        );
      } else {
        r.condition = body.Condition;
      }
    }
    // A Ref may name the thing (its name), the certificate (its id) and a named policy.
    if (rtype !== 'AWS::IoT::Policy' || properties.PolicyName !== undefined) scope.resources.add(logicalId);
    out.push(r);
  }
  return out;
}

function parseOverrides(
  type: ResourceType,
  value: JsonValue | undefined,
  path: string,
  c: Collector,
): Record<string, OverrideAction> {
  const out: Record<string, OverrideAction> = {};
  if (value === undefined) return out;
  const allowed = OVERRIDES[type];
  if (!isObject(value)) {
    c.add(path, 'OverrideSettings must be an object of property name to DO_NOTHING, REPLACE, FAIL or MERGE');
    return out;
  }
  if (Object.keys(allowed).length === 0 && Object.keys(value).length > 0) {
    c.add(path, `${type} resources take no OverrideSettings`);
    return out;
  }
  c.unknownKeys(value, Object.keys(allowed), path, `the OverrideSettings of ${type}`);
  for (const [key, action] of Object.entries(value)) {
    const actions = allowed[key];
    if (!actions) continue;
    if (typeof action !== 'string' || !actions.includes(action as OverrideAction)) {
      c.add(
        `${path}.${key}`,
        `OverrideSettings.${key} must be one of ${actions.join(', ')}, not ${JSON.stringify(action)}`,
      );
    } else {
      out[key] = action as OverrideAction;
    }
  }
  return out;
}

function checkResource(r: ResourceDeclaration, scope: CheckScope, c: Collector): void {
  const path = `Resources.${r.logicalId}.Properties`;
  const kinds = PROPERTIES[r.type];
  c.unknownKeys(r.properties, Object.keys(kinds), path, `the Properties of ${r.type}`);
  for (const [key, value] of Object.entries(r.properties)) {
    const kind = kinds[key];
    if (kind) checkExpression(value, `${path}.${key}`, kind, scope, true);
  }
  const has = (k: string) => r.properties[k] !== undefined;
  if (r.type === 'AWS::IoT::Thing' && !has('ThingName'))
    c.add(`${path}.ThingName`, 'A thing resource needs ThingName');
  if (r.type === 'AWS::IoT::Certificate') {
    const sources = ['CertificateId', 'CertificatePem', 'CertificateSigningRequest'].filter(has);
    if (sources.length !== 1) {
      c.add(
        path,
        `A certificate resource takes exactly one of CertificateId, CertificatePem or CertificateSigningRequest${
          sources.length ? ` (found ${sources.join(' and ')})` : ''
        }`,
      );
    }
    if (has('CACertificatePem') && !has('CertificatePem')) {
      c.add(`${path}.CACertificatePem`, 'CACertificatePem goes with CertificatePem (the CA that signed it)');
    }
    const status = r.properties.Status;
    if (typeof status === 'string' && !['ACTIVE', 'INACTIVE'].includes(status.toUpperCase())) {
      c.add(`${path}.Status`, `Status must be ACTIVE or INACTIVE (any case), not '${status}'`);
    }
  }
  if (r.type === 'AWS::IoT::Policy') {
    if (has('PolicyName') === has('PolicyDocument')) {
      c.add(path, 'A policy resource takes exactly one of PolicyName (an existing policy) or PolicyDocument');
    }
    const doc = r.properties.PolicyDocument;
    if (typeof doc === 'string') {
      const read = readJson(doc);
      if (!read.ok || !isObject(read.value)) {
        c.add(
          `${path}.PolicyDocument`,
          `PolicyDocument is not a JSON object${read.ok ? '' : `: ${read.message} (line ${read.line}, column ${read.column})`}`,
        );
      }
    } else if (doc !== undefined && !isObject(doc)) {
      c.add(`${path}.PolicyDocument`, 'PolicyDocument is a JSON object, or its JSON text as a string');
    }
  }
}

function checkConditions(bodies: Record<string, JsonValue>, scope: CheckScope, c: Collector): void {
  const graph = new Map<string, Set<string>>();
  for (const [name, body] of Object.entries(bodies)) {
    if (!NAME.test(name))
      c.add(`Conditions.${name}`, 'A condition name is 1 to 128 characters of A-Z a-z 0-9 _ -');
    const refers = new Set<string>();
    checkCondition(body, `Conditions.${name}`, scope, refers);
    graph.set(name, refers);
  }
  const cycle = findCycle(graph);
  if (cycle)
    c.add(`Conditions.${cycle[0]}`, `Conditions refer to each other in a cycle: ${cycle.join(' -> ')}`);
}

/** A resource's naming property may Ref another resource, never in a cycle (thing name from itself). */
function checkNameCycles(resources: readonly ResourceDeclaration[], c: Collector): void {
  const nameProperty: Record<ResourceType, string> = {
    'AWS::IoT::Thing': 'ThingName',
    'AWS::IoT::Certificate': 'CertificateId',
    'AWS::IoT::Policy': 'PolicyName',
  };
  const ids = new Set(resources.map((r) => r.logicalId));
  const graph = new Map<string, Set<string>>();
  for (const r of resources) {
    const refs = new Set<string>();
    collectRefs(r.properties[nameProperty[r.type]], refs);
    graph.set(r.logicalId, new Set([...refs].filter((x) => ids.has(x))));
  }
  const cycle = findCycle(graph);
  if (cycle)
    c.add(`Resources.${cycle[0]}`, `Resource names refer to each other in a cycle: ${cycle.join(' -> ')}`);
}

function collectRefs(v: JsonValue | undefined, out: Set<string>): void {
  if (Array.isArray(v)) v.forEach((x) => collectRefs(x, out));
  else if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'Ref' && typeof x === 'string') out.add(x);
      else if (k === 'Fn::Sub') {
        const text = typeof x === 'string' ? x : Array.isArray(x) && typeof x[0] === 'string' ? x[0] : '';
        for (const m of text.matchAll(/\$\{([^!}][^}]*)\}/g)) out.add(m[1]!);
        collectRefs(x, out);
      } else collectRefs(x, out);
    }
  }
}

function findCycle(graph: ReadonlyMap<string, ReadonlySet<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (!graph.has(m)) continue;
      const found = visit(m);
      if (found) return found;
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    const found = visit(n);
    if (found) return found;
  }
  return null;
}
