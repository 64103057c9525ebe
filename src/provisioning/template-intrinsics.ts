/**
 * The intrinsic functions of the provisioning template language (AWS IoT Developer Guide, "Provisioning
 * templates", which borrows CloudFormation's): `Ref`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::Sub`,
 * `Fn::FindInMap`, `Fn::If`, and in the Conditions section `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or` and
 * `{"Condition": name}`.
 *
 * Two passes over the same JSON, both pure:
 * - `checkExpression` (at CreateProvisioningTemplate time): the shape of every call, its argument count,
 *   every name it refers to (parameters, resources, conditions, mappings, `${...}` variables), and the kind
 *   of value it gives where that is known (a list where a string is wanted is refused here, not at the first
 *   device). Errors are collected with their path, never thrown.
 * - `evaluateExpression` (at provisioning time): the value, given the parameters. Failures throw
 *   `EvaluationFailure` with a path and the refusal code the flows report.
 *
 * Paths read like the template: `Resources.thing.Properties.ThingName.Fn::Join[1][0]`.
 */
import type { JsonValue } from './template-json.js';

/** What a checked expression is known to give. `novalue` is `{"Ref": "AWS::NoValue"}`: the member is dropped. */
export type Kind = 'string' | 'list' | 'map' | 'bool' | 'any' | 'novalue';

/** A value an expression gives at provisioning time (a JSON value; lists of strings where a list is meant). */
export type TemplateValue = JsonValue;

/** `{"Ref": "AWS::NoValue"}` evaluated: the enclosing property, key or list element is left out. */
export const NO_VALUE: unique symbol = Symbol('AWS::NoValue');
export type Evaluated = TemplateValue | typeof NO_VALUE;

export const NO_VALUE_REF = 'AWS::NoValue';

/**
 * The certificate's facts a template may refer to as parameters (AWS: JIT provisioning, "AWS IoT defines the
 * following parameters"; fleet templates use AWS::IoT::Certificate::Id). The value names the subject field of
 * CertificateFacts, or `certificateId`.
 */
export const CERTIFICATE_PARAMETERS: Readonly<Record<string, string>> = {
  'AWS::IoT::Certificate::Id': 'certificateId',
  'AWS::IoT::Certificate::CommonName': 'CommonName',
  'AWS::IoT::Certificate::Country': 'Country',
  'AWS::IoT::Certificate::Organization': 'Organization',
  'AWS::IoT::Certificate::OrganizationalUnit': 'OrganizationalUnit',
  'AWS::IoT::Certificate::DistinguishedNameQualifier': 'DistinguishedNameQualifier',
  'AWS::IoT::Certificate::StateName': 'StateName',
  'AWS::IoT::Certificate::SerialNumber': 'SerialNumber',
  'AWS::IoT::Certificate::Locality': 'Locality',
  'AWS::IoT::Certificate::Title': 'Title',
  'AWS::IoT::Certificate::Surname': 'Surname',
  'AWS::IoT::Certificate::GivenName': 'GivenName',
  'AWS::IoT::Certificate::Initials': 'Initials',
  'AWS::IoT::Certificate::Pseudonym': 'Pseudonym',
  'AWS::IoT::Certificate::GenerationQualifier': 'GenerationQualifier',
};

export const VALUE_FUNCTIONS = [
  'Ref',
  'Fn::Join',
  'Fn::Select',
  'Fn::Split',
  'Fn::Sub',
  'Fn::FindInMap',
  'Fn::If',
] as const;
export const CONDITION_FUNCTIONS = ['Fn::Equals', 'Fn::Not', 'Fn::And', 'Fn::Or', 'Condition'] as const;
const ALL_FUNCTIONS: readonly string[] = [...VALUE_FUNCTIONS, ...CONDITION_FUNCTIONS];

/** Mappings: map name -> top-level key -> second-level key -> a string or a list of strings. */
export type Mappings = Readonly<
  Record<string, Readonly<Record<string, Readonly<Record<string, string | string[]>>>>>
>;

/** What the checker knows of the template around an expression. */
export interface CheckScope {
  /** Declared parameters and the kind each gives (String/Number: string; list types: list). */
  readonly parameters: ReadonlyMap<string, 'string' | 'list'>;
  /** Resource logical ids a `Ref` may name (the thing: its name; the certificate: its id; a named policy). */
  readonly resources: ReadonlySet<string>;
  readonly conditions: ReadonlySet<string>;
  readonly mappings: Mappings;
  readonly errors: { path: string; message: string }[];
}

export type RefusalCode = 'MissingParameter' | 'InvalidParameter' | 'ConditionFailed' | 'InvalidTemplate';

/** A provisioning-time failure at a place in the template. */
export class EvaluationFailure extends Error {
  constructor(
    readonly code: RefusalCode,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the evaluator needs from the template and the request. */
export interface EvaluationScope {
  /**
   * What `Ref` (or an Fn::Sub variable) names: a parameter's resolved value (a list for list types), or a
   * resource's value (thing name, certificate id, policy name). Throws EvaluationFailure when it has none.
   */
  ref(name: string, path: string): string | string[];
  condition(name: string, path: string): boolean;
  readonly mappings: Mappings;
}

const isObject = (v: unknown): v is Record<string, JsonValue> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The intrinsic-function key of an object, when it is a call (one key naming a function, or starting with Fn::). */
function callOf(v: Record<string, JsonValue>): string | null {
  const keys = Object.keys(v);
  const fn = keys.find((k) => k === 'Ref' || k === 'Condition' || k.startsWith('Fn::'));
  return fn ?? null;
}

const describeKind = (k: Kind): string =>
  k === 'list'
    ? 'a list'
    : k === 'map'
      ? 'an object'
      : k === 'bool'
        ? 'a condition (true or false)'
        : k === 'novalue'
          ? 'AWS::NoValue'
          : 'a string';

// ---------------------------------------------------------------------------------------------------------
// Checking

/**
 * Check an expression in a value position (a property, a DeviceConfiguration value, an argument) and return
 * the kind it gives. `expect` is what the place needs: a definite mismatch is an error at `path`.
 * `allowNoValue`: whether `AWS::NoValue` may stand here (a property, a list element, an Fn::If branch).
 */
export function checkExpression(
  expr: JsonValue,
  path: string,
  expect: Kind,
  scope: CheckScope,
  allowNoValue = false,
): Kind {
  const kind = checkAny(expr, path, expect, scope);
  if (kind === 'novalue' && !allowNoValue) {
    scope.errors.push({
      path,
      message: `${NO_VALUE_REF} is allowed only as a property value or in a branch of Fn::If`,
    });
  } else if (kind !== 'any' && kind !== 'novalue' && expect !== 'any' && kind !== expect) {
    scope.errors.push({
      path,
      message: `Must give ${describeKind(expect)}, but this gives ${describeKind(kind)}`,
    });
  }
  return kind;
}

function checkAny(expr: JsonValue, path: string, expect: Kind, scope: CheckScope): Kind {
  if (typeof expr === 'string') return 'string';
  if (typeof expr === 'number' || typeof expr === 'boolean' || expr === null) {
    if (expect === 'string' || expect === 'list' || expect === 'map') {
      scope.errors.push({
        path,
        message: `Must be ${describeKind(expect)}, not ${expr === null ? 'null' : typeof expr} (write "${String(expr)}" for the text)`,
      });
    }
    return 'any';
  }
  if (Array.isArray(expr)) {
    expr.forEach((item, i) =>
      checkExpression(item, `${path}[${i}]`, expect === 'list' ? 'string' : 'any', scope, true),
    );
    return 'list';
  }
  const fn = callOf(expr);
  if (fn === null) {
    for (const [key, value] of Object.entries(expr)) {
      checkExpression(value, `${path}.${key}`, expect === 'map' ? 'string' : 'any', scope, true);
    }
    return 'map';
  }
  const fnPath = `${path}.${fn}`;
  if (Object.keys(expr).length !== 1) {
    scope.errors.push({
      path: fnPath,
      message: `An intrinsic function must be the only key of its object; found also ${Object.keys(expr)
        .filter((k) => k !== fn)
        .map((k) => `"${k}"`)
        .join(', ')}`,
    });
    return 'any';
  }
  const arg = expr[fn] as JsonValue;
  switch (fn) {
    case 'Ref':
      return checkRef(arg, path, scope); // a Ref's errors point at the Ref itself
    case 'Fn::Join':
      return checkJoin(arg, fnPath, scope);
    case 'Fn::Select':
      return checkSelect(arg, fnPath, scope);
    case 'Fn::Split':
      return checkSplit(arg, fnPath, scope);
    case 'Fn::Sub':
      return checkSub(arg, fnPath, scope);
    case 'Fn::FindInMap':
      return checkFindInMap(arg, fnPath, scope);
    case 'Fn::If':
      return checkIf(arg, fnPath, expect, scope);
    case 'Fn::Equals':
    case 'Fn::Not':
    case 'Fn::And':
    case 'Fn::Or':
    case 'Condition':
      scope.errors.push({
        path: fnPath,
        message: `${fn} is allowed only in the Conditions section; here use Fn::If with a condition declared there`,
      });
      return 'any';
    default:
      scope.errors.push({
        path: fnPath,
        message: `Unknown intrinsic function '${fn}'; the template language has ${ALL_FUNCTIONS.join(', ')}`,
      });
      return 'any';
  }
}

function argList(
  arg: JsonValue,
  path: string,
  fn: string,
  min: number,
  max: number,
  scope: CheckScope,
): JsonValue[] | null {
  if (!Array.isArray(arg) || arg.length < min || arg.length > max) {
    const count = min === max ? `${min}` : `${min} to ${max}`;
    scope.errors.push({
      path,
      message: `${fn} takes a list of ${count} arguments${Array.isArray(arg) ? `, not ${arg.length}` : ''}`,
    });
    return null;
  }
  return arg;
}

function checkRef(arg: JsonValue, path: string, scope: CheckScope): Kind {
  if (typeof arg !== 'string') {
    scope.errors.push({ path, message: 'Ref takes the name of a parameter or a resource, as a string' });
    return 'any';
  }
  if (arg === NO_VALUE_REF) return 'novalue';
  const param = scope.parameters.get(arg);
  if (param) return param;
  if (scope.resources.has(arg)) return 'string';
  if (CERTIFICATE_PARAMETERS[arg] !== undefined) return 'string';
  scope.errors.push({ path, message: refUnknown(arg, scope) });
  return 'any';
}

function refUnknown(name: string, scope: CheckScope): string {
  const known = [...scope.parameters.keys(), ...scope.resources];
  return `'${name}' is neither a declared parameter nor a resource${
    known.length ? ` (declared: ${known.join(', ')})` : ''
  }; declare it under Parameters, or name one of the certificate parameters (AWS::IoT::Certificate::Id, ...)`;
}

function checkJoin(arg: JsonValue, path: string, scope: CheckScope): Kind {
  const args = argList(arg, path, 'Fn::Join', 2, 2, scope);
  if (!args) return 'string';
  if (typeof args[0] !== 'string')
    scope.errors.push({ path: `${path}[0]`, message: 'The delimiter of Fn::Join must be a string literal' });
  checkExpression(args[1]!, `${path}[1]`, 'list', scope);
  return 'string';
}

function checkSelect(arg: JsonValue, path: string, scope: CheckScope): Kind {
  const args = argList(arg, path, 'Fn::Select', 2, 2, scope);
  if (!args) return 'string';
  const [index, list] = args as [JsonValue, JsonValue];
  if (typeof index === 'number' || (typeof index === 'string' && /^\d+$/.test(index))) {
    const n = Number(index);
    if (!Number.isInteger(n) || n < 0) {
      scope.errors.push({
        path: `${path}[0]`,
        message: 'The index of Fn::Select must be a whole number from 0',
      });
    } else if (Array.isArray(list) && n >= list.length) {
      scope.errors.push({
        path: `${path}[0]`,
        message: `Index ${n} is past the end of the list (${list.length} items, so 0 to ${list.length - 1})`,
      });
    }
  } else if (typeof index === 'string') {
    scope.errors.push({
      path: `${path}[0]`,
      message: `The index of Fn::Select must be a whole number, not '${index}'`,
    });
  } else {
    checkExpression(index, `${path}[0]`, 'string', scope);
  }
  checkExpression(list, `${path}[1]`, 'list', scope);
  return 'string';
}

function checkSplit(arg: JsonValue, path: string, scope: CheckScope): Kind {
  const args = argList(arg, path, 'Fn::Split', 2, 2, scope);
  if (!args) return 'list';
  if (typeof args[0] !== 'string' || args[0] === '') {
    scope.errors.push({
      path: `${path}[0]`,
      message: 'The delimiter of Fn::Split must be a non-empty string literal',
    });
  }
  checkExpression(args[1]!, `${path}[1]`, 'string', scope);
  return 'list';
}

/** The parts of an Fn::Sub text: literal runs and `${name}` variables; `${!x}` is the literal `${x}`. */
export type SubPart = { text: string } | { variable: string };

export function parseSub(text: string): { parts: SubPart[] } | { error: string } {
  const parts: SubPart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('${', i);
    if (open < 0) {
      literal += text.slice(i);
      break;
    }
    literal += text.slice(i, open);
    const close = text.indexOf('}', open + 2);
    if (close < 0)
      return {
        error: `Unterminated '\${' at character ${open + 1} (close it with '}', or write '\${!' for a literal '\${')`,
      };
    const inner = text.slice(open + 2, close);
    if (inner.startsWith('!')) {
      literal += '${' + inner.slice(1) + '}';
    } else {
      if (inner.trim() === '') return { error: `Empty variable '\${}' at character ${open + 1}` };
      if (literal) parts.push({ text: literal });
      literal = '';
      parts.push({ variable: inner });
    }
    i = close + 1;
  }
  if (literal) parts.push({ text: literal });
  return { parts };
}

function checkSub(arg: JsonValue, path: string, scope: CheckScope): Kind {
  let text: JsonValue;
  let vars: Record<string, JsonValue> = {};
  if (typeof arg === 'string') {
    text = arg;
  } else {
    const args = argList(arg, path, 'Fn::Sub', 2, 2, scope);
    if (!args) return 'string';
    text = args[0]!;
    if (!isObject(args[1])) {
      scope.errors.push({
        path: `${path}[1]`,
        message: 'The second argument of Fn::Sub is an object of variable names to values',
      });
    } else {
      vars = args[1];
      for (const [name, value] of Object.entries(vars))
        checkExpression(value, `${path}[1].${name}`, 'string', scope);
    }
  }
  const textPath = typeof arg === 'string' ? path : `${path}[0]`;
  if (typeof text !== 'string') {
    scope.errors.push({ path: textPath, message: 'The text of Fn::Sub must be a string literal' });
    return 'string';
  }
  const parsed = parseSub(text);
  if ('error' in parsed) {
    scope.errors.push({ path: textPath, message: parsed.error });
    return 'string';
  }
  for (const part of parsed.parts) {
    if (!('variable' in part) || Object.hasOwn(vars, part.variable)) continue;
    const name = part.variable;
    const param = scope.parameters.get(name);
    if (param === 'list') {
      scope.errors.push({
        path: textPath,
        message: `\${${name}} is a list parameter; Fn::Sub takes strings (use Fn::Join)`,
      });
    } else if (!param && !scope.resources.has(name) && CERTIFICATE_PARAMETERS[name] === undefined) {
      scope.errors.push({
        path: textPath,
        message: `\${${name}} is not a declared parameter, a resource or a variable of this Fn::Sub${
          name.includes(':') ? ` (for a literal policy variable write \${!${name}})` : ''
        }`,
      });
    }
  }
  return 'string';
}

function checkFindInMap(arg: JsonValue, path: string, scope: CheckScope): Kind {
  const args = argList(arg, path, 'Fn::FindInMap', 3, 3, scope);
  if (!args) return 'any';
  args.forEach((a, i) => checkExpression(a, `${path}[${i}]`, 'string', scope));
  const [mapName, top, second] = args;
  if (typeof mapName !== 'string') return 'any';
  const map = scope.mappings[mapName];
  if (!map) {
    const names = Object.keys(scope.mappings);
    scope.errors.push({
      path: `${path}[0]`,
      message: `No mapping named '${mapName}' under Mappings${names.length ? ` (declared: ${names.join(', ')})` : ''}`,
    });
    return 'any';
  }
  if (typeof top !== 'string') return 'any';
  const entry = map[top];
  if (!entry) {
    scope.errors.push({
      path: `${path}[1]`,
      message: `Mapping '${mapName}' has no key '${top}' (keys: ${Object.keys(map).join(', ')})`,
    });
    return 'any';
  }
  if (typeof second !== 'string') return 'any';
  const value = entry[second];
  if (value === undefined) {
    scope.errors.push({
      path: `${path}[2]`,
      message: `Mapping '${mapName}.${top}' has no key '${second}' (keys: ${Object.keys(entry).join(', ')})`,
    });
    return 'any';
  }
  return Array.isArray(value) ? 'list' : 'string';
}

function checkIf(arg: JsonValue, path: string, expect: Kind, scope: CheckScope): Kind {
  const args = argList(arg, path, 'Fn::If', 3, 3, scope);
  if (!args) return 'any';
  const [name, whenTrue, whenFalse] = args as [JsonValue, JsonValue, JsonValue];
  checkConditionName(name, `${path}[0]`, scope);
  const a = checkExpression(whenTrue, `${path}[1]`, expect, scope, true);
  const b = checkExpression(whenFalse, `${path}[2]`, expect, scope, true);
  if (a === 'novalue') return b;
  if (b === 'novalue' || a === b) return a;
  return 'any';
}

function checkConditionName(name: JsonValue, path: string, scope: CheckScope): void {
  if (typeof name !== 'string') {
    scope.errors.push({
      path,
      message: 'Expected the name of a condition declared in the Conditions section',
    });
  } else if (!scope.conditions.has(name)) {
    const known = [...scope.conditions];
    scope.errors.push({
      path,
      message: `No condition named '${name}' in the Conditions section${known.length ? ` (declared: ${known.join(', ')})` : ''}`,
    });
  }
}

/**
 * Check a condition body (a Conditions entry, or an argument of Fn::Not/And/Or) and collect the names of
 * the conditions it refers to (for cycle detection).
 */
export function checkCondition(
  expr: JsonValue,
  path: string,
  scope: CheckScope,
  refersTo: Set<string>,
): void {
  const fn = isObject(expr) ? callOf(expr) : null;
  if (!isObject(expr) || fn === null || Object.keys(expr).length !== 1) {
    scope.errors.push({
      path,
      message: 'A condition is one of Fn::Equals, Fn::Not, Fn::And, Fn::Or, or {"Condition": "<name>"}',
    });
    return;
  }
  const arg = expr[fn] as JsonValue;
  const fnPath = `${path}.${fn}`;
  switch (fn) {
    case 'Condition':
      checkConditionName(arg, fnPath, scope);
      if (typeof arg === 'string') refersTo.add(arg);
      return;
    case 'Fn::Equals': {
      const args = argList(arg, fnPath, 'Fn::Equals', 2, 2, scope);
      args?.forEach((a, i) => checkExpression(a, `${fnPath}[${i}]`, 'any', scope));
      return;
    }
    case 'Fn::Not': {
      const args = argList(arg, fnPath, 'Fn::Not', 1, 1, scope);
      if (args) checkCondition(args[0]!, `${fnPath}[0]`, scope, refersTo);
      return;
    }
    case 'Fn::And':
    case 'Fn::Or': {
      const args = argList(arg, fnPath, fn, 2, 10, scope);
      args?.forEach((a, i) => checkCondition(a, `${fnPath}[${i}]`, scope, refersTo));
      return;
    }
    default:
      scope.errors.push({
        path: fnPath,
        message: ALL_FUNCTIONS.includes(fn)
          ? `${fn} gives a value, not a condition; a condition is Fn::Equals, Fn::Not, Fn::And, Fn::Or or {"Condition": "<name>"}`
          : `Unknown intrinsic function '${fn}'; the template language has ${ALL_FUNCTIONS.join(', ')}`,
      });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation

/** A literal argument the checker has seen to be a string (names, delimiters, Fn::Sub text). */
const literal = (v: JsonValue | undefined): string => (typeof v === 'string' ? v : JSON.stringify(v ?? null));

const fail = (code: RefusalCode, path: string, message: string): never => {
  throw new EvaluationFailure(code, path, message);
};

/** Evaluate an expression that has passed checkExpression. */
export function evaluateExpression(expr: JsonValue, path: string, scope: EvaluationScope): Evaluated {
  if (typeof expr !== 'object' || expr === null) return expr;
  if (Array.isArray(expr)) {
    const out: TemplateValue[] = [];
    expr.forEach((item, i) => {
      const v = evaluateExpression(item, `${path}[${i}]`, scope);
      if (v !== NO_VALUE) out.push(v);
    });
    return out;
  }
  const fn = callOf(expr);
  if (fn === null) {
    const out: Record<string, TemplateValue> = {};
    for (const [key, value] of Object.entries(expr)) {
      const v = evaluateExpression(value, `${path}.${key}`, scope);
      if (v !== NO_VALUE)
        Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  const arg = expr[fn] as JsonValue;
  const p = `${path}.${fn}`;
  const args = Array.isArray(arg) ? arg : [];
  switch (fn) {
    case 'Ref':
      return evaluateRef(literal(arg), path, scope); // as checkExpression: at the Ref itself
    case 'Fn::Join': {
      const list = asList(evaluateExpression(args[1]!, `${p}[1]`, scope), `${p}[1]`);
      return list.map((item, i) => asString(item, `${p}[1][${i}]`)).join(literal(args[0]));
    }
    case 'Fn::Select': {
      const index = Number(asScalar(evaluateExpression(args[0]!, `${p}[0]`, scope), `${p}[0]`));
      const list = asList(evaluateExpression(args[1]!, `${p}[1]`, scope), `${p}[1]`);
      if (!Number.isInteger(index) || index < 0 || index >= list.length) {
        return fail(
          'InvalidParameter',
          `${p}[0]`,
          `Fn::Select index ${String(index)} is outside the list of ${list.length} item(s) the parameters gave`,
        );
      }
      return list[index]!;
    }
    case 'Fn::Split':
      return asString(evaluateExpression(args[1]!, `${p}[1]`, scope), `${p}[1]`).split(literal(args[0]));
    case 'Fn::Sub':
      return evaluateSub(arg, p, scope);
    case 'Fn::FindInMap':
      return evaluateFindInMap(args, p, scope);
    case 'Fn::If':
      return scope.condition(literal(args[0]), `${p}[0]`)
        ? evaluateExpression(args[1]!, `${p}[1]`, scope)
        : evaluateExpression(args[2]!, `${p}[2]`, scope);
    default:
      return fail('InvalidTemplate', p, `'${fn}' cannot be evaluated here`);
  }
}

function evaluateRef(name: string, path: string, scope: EvaluationScope): Evaluated {
  if (name === NO_VALUE_REF) return NO_VALUE;
  const v = scope.ref(name, path);
  return Array.isArray(v) ? [...v] : v;
}

function evaluateSub(arg: JsonValue, path: string, scope: EvaluationScope): string {
  const text = typeof arg === 'string' ? arg : literal((arg as JsonValue[])[0]);
  const varsRaw = typeof arg === 'string' ? {} : ((arg as JsonValue[])[1] as Record<string, JsonValue>);
  const parsed = parseSub(text);
  if ('error' in parsed) return fail('InvalidTemplate', path, parsed.error);
  let out = '';
  for (const part of parsed.parts) {
    if ('text' in part) {
      out += part.text;
    } else if (Object.hasOwn(varsRaw, part.variable)) {
      const vPath = `${path}[1].${part.variable}`;
      out += asString(evaluateExpression(varsRaw[part.variable]!, vPath, scope), vPath);
    } else {
      out += asString(scope.ref(part.variable, path), path);
    }
  }
  return out;
}

function evaluateFindInMap(args: JsonValue[], path: string, scope: EvaluationScope): TemplateValue {
  const [mapName, top, second] = args.map((a, i) =>
    asString(evaluateExpression(a, `${path}[${i}]`, scope), `${path}[${i}]`),
  );
  const map = scope.mappings[mapName!];
  if (!map) return fail('InvalidParameter', `${path}[0]`, `No mapping named '${mapName}'`);
  const entry = Object.hasOwn(map, top!) ? map[top!] : undefined;
  if (!entry) {
    return fail(
      'InvalidParameter',
      `${path}[1]`,
      `Mapping '${mapName}' has no key '${top}' (keys: ${Object.keys(map).join(', ')})`,
    );
  }
  const value = Object.hasOwn(entry, second!) ? entry[second!] : undefined;
  if (value === undefined) {
    return fail(
      'InvalidParameter',
      `${path}[2]`,
      `Mapping '${mapName}.${top}' has no key '${second}' (keys: ${Object.keys(entry).join(', ')})`,
    );
  }
  return Array.isArray(value) ? [...value] : value;
}

/** Evaluate a condition body (checked by checkCondition). */
export function evaluateCondition(expr: JsonValue, path: string, scope: EvaluationScope): boolean {
  const obj = expr as Record<string, JsonValue>;
  const fn = callOf(obj)!;
  const arg = obj[fn] as JsonValue;
  const p = `${path}.${fn}`;
  const args = Array.isArray(arg) ? arg : [];
  switch (fn) {
    case 'Condition':
      return scope.condition(literal(arg), p);
    case 'Fn::Equals': {
      const [a, b] = args.map((x, i) => evaluateExpression(x, `${p}[${i}]`, scope));
      return canonical(a) === canonical(b);
    }
    case 'Fn::Not':
      return !evaluateCondition(args[0]!, `${p}[0]`, scope);
    case 'Fn::And':
      return args.every((c, i) => evaluateCondition(c, `${p}[${i}]`, scope));
    case 'Fn::Or':
      return args.some((c, i) => evaluateCondition(c, `${p}[${i}]`, scope));
    default:
      return fail('InvalidTemplate', p, `'${fn}' is not a condition`);
  }
}

/** Fn::Equals compares values, not their JSON text: the number 5 and the string "5" are equal (as in CloudFormation, where parameters are strings). */
function canonical(v: Evaluated | undefined): string {
  if (v === NO_VALUE || v === undefined) return '\u0000novalue';
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(String(v));
  return JSON.stringify(v);
}

export function asString(v: Evaluated, path: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return fail(
    'InvalidTemplate',
    path,
    `Must evaluate to a string, but gave ${v === NO_VALUE ? NO_VALUE_REF : Array.isArray(v) ? 'a list' : JSON.stringify(v)}`,
  );
}

function asScalar(v: Evaluated, path: string): string | number {
  if (typeof v === 'string' || typeof v === 'number') return v;
  return asString(v, path);
}

export function asList(v: Evaluated, path: string): TemplateValue[] {
  if (Array.isArray(v)) return v;
  return fail(
    'InvalidTemplate',
    path,
    `Must evaluate to a list, but gave ${v === NO_VALUE ? NO_VALUE_REF : JSON.stringify(v)}`,
  );
}
