/**
 * The provisioning template language (AWS IoT Developer Guide, "Provisioning templates"; reference §8.4):
 * `Parameters`, `Mappings`, `Conditions`, `Resources` (a thing, a certificate, policies) with
 * `OverrideSettings`, and `DeviceConfiguration`, with the intrinsic functions of template-intrinsics.ts.
 *
 * Compile, then evaluate (as src/policy does): `parseTemplate` checks a body once, when the template or a
 * version is created, and `evaluateTemplate` turns a checked template and one request's parameters and
 * certificate into a ProvisioningPlan, the list of things to create or update that the provisioning flows
 * apply to the registry, identity and policy stores. Both are pure: no I/O, no clock, no randomness.
 *
 * Refusals (EvaluateResult.error.code) and where each comes from:
 * - MissingParameter: a declared parameter has no value (not in the request, no Default; for JITP, the
 *   certificate's subject lacks the field).
 * - InvalidParameter: a value breaks its parameter's Type or constraints (AllowedValues, AllowedPattern,
 *   MinLength, MaxLength, MinValue, MaxValue), makes an invalid thing, group or policy name or attribute, is
 *   looked up in a mapping that has no such key, or would put policy wildcards into a policy document.
 * - ConditionFailed: the thing or certificate of a FLEET_PROVISIONING template (or the certificate of a JITP
 *   template) is excluded by its Condition: the request is refused (a Thingstead rule, docs/provisioning-templates.md).
 * - InvalidTemplate: what the checks at create time cannot see (a value of the wrong kind from an Fn::If).
 */
import {
  asList,
  asString,
  CERTIFICATE_PARAMETERS,
  evaluateCondition,
  evaluateExpression,
  EvaluationFailure,
  NO_VALUE,
  type Evaluated,
  type EvaluationScope,
  type Mappings,
} from './template-intrinsics.js';
import type { JsonValue } from './template-json.js';
import { parameterProblem } from './template-parse.js';

export { parseTemplate, MAX_POLICIES } from './template-parse.js';
export { CERTIFICATE_PARAMETERS } from './template-intrinsics.js';

/** A place in the template and what is wrong there. `path` e.g. "Resources.thing.Properties.ThingName.Fn::Join[1][0]". */
export interface TemplateError {
  path: string;
  /** What is wrong and what is allowed. */
  message: string;
  /** JSON syntax errors: where, both from 1. */
  line?: number;
  column?: number;
}

export type ParseResult = { ok: true; template: ParsedTemplate } | { ok: false; errors: TemplateError[] };

export type ParameterType = 'String' | 'Number' | 'List<String>' | 'CommaDelimitedList' | 'List<Number>';

export interface ParameterDeclaration {
  name: string;
  type: ParameterType;
  default?: string;
  description?: string;
  allowedValues?: string[];
  /** Matched against the whole value (anchored), Unicode mode. */
  allowedPattern?: string;
  minLength?: number;
  maxLength?: number;
  minValue?: number;
  maxValue?: number;
  /** Shown with a refused value: why the constraint exists. */
  constraintDescription?: string;
}

export type ResourceType = 'AWS::IoT::Thing' | 'AWS::IoT::Certificate' | 'AWS::IoT::Policy';

export interface ResourceDeclaration {
  logicalId: string;
  type: ResourceType;
  /** The Properties as written (expressions, evaluated per request). */
  properties: Record<string, JsonValue>;
  /** As written; evaluateTemplate fills the defaults (DO_NOTHING). */
  overrideSettings: Record<string, OverrideAction>;
  /** The name of the condition that includes it. */
  condition?: string;
}

/** A checked template. Immutable by convention: shared between requests (cache it by template version). */
export interface ParsedTemplate {
  description?: string;
  /** Declared parameters, in the template's order (the pre-provisioning hook is sent the request's values). */
  parameters: ParameterDeclaration[];
  mappings: Mappings;
  conditions: Record<string, JsonValue>;
  /** In the template's order. */
  resources: ResourceDeclaration[];
  deviceConfiguration: Record<string, JsonValue>;
  thingLogicalId?: string;
  certificateLogicalId?: string;
}

/** Facts of the certificate being provisioned, for AWS::IoT::Certificate::* parameters. */
export interface CertificateFacts {
  certificateId: string;
  certificatePem?: string;
  caCertificateId?: string;
  /**
   * Subject fields by name: CommonName, Country, Organization, OrganizationalUnit, DistinguishedNameQualifier,
   * StateName, SerialNumber, Locality, Title, Surname, GivenName, Initials, Pseudonym, GenerationQualifier.
   */
  subject?: Record<string, string>;
  subjectAlternativeNames?: string[];
  notBefore?: string;
  notAfter?: string;
}

export interface EvaluationContext {
  /** The request's parameters (the device's, RegisterThing's, a bulk registration line's). */
  parameters: Record<string, string>;
  /**
   * The certificate being provisioned. When present, AWS::IoT::Certificate::* parameters come from it
   * only (a request cannot choose its own certificate id); when absent, from `parameters`.
   */
  certificate?: CertificateFacts;
  templateType: 'FLEET_PROVISIONING' | 'JITP';
}

export type OverrideAction = 'DO_NOTHING' | 'REPLACE' | 'FAIL' | 'MERGE';

export interface ProvisioningPlan {
  thing?: {
    logicalId: string;
    thingName: string;
    attributes?: Record<string, string>;
    thingTypeName?: string;
    thingGroups?: string[];
    billingGroup?: string;
    /** Every setting is present (DO_NOTHING where the template gives none). */
    overrideSettings: {
      AttributePayload?: OverrideAction;
      ThingTypeName?: OverrideAction;
      ThingGroups?: OverrideAction;
    };
  };
  certificate?: {
    logicalId: string;
    certificateId?: string;
    certificatePem?: string;
    caCertificatePem?: string;
    /** Bulk registration: a CSR to sign. */
    certificateSigningRequest?: string;
    status?: 'ACTIVE' | 'INACTIVE';
    /** Status is present (DO_NOTHING where the template gives none). */
    overrideSettings: { Status?: OverrideAction };
  };
  /** In the template's order; each has policyName (attach an existing policy) or policyDocument (JSON text). */
  policies: { logicalId: string; policyName?: string; policyDocument?: string }[];
  deviceConfiguration: Record<string, string>;
}

export type RefusalCode = 'MissingParameter' | 'InvalidParameter' | 'ConditionFailed' | 'InvalidTemplate';

export type EvaluateResult =
  | {
      ok: true;
      plan: ProvisioningPlan;
      /** Human-readable trace of decisions: parameters and their sources, conditions, resources included. */
      steps: string[];
    }
  | { ok: false; error: TemplateError & { code: RefusalCode }; steps: string[] };

// Registry and policy naming rules (reference §3.11 and §11, the same as src/registry/api.ts).
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;
/** Characters a parameter may not bring into a policy document: wildcards, policy variables, JSON syntax. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const POLICY_UNSAFE = /[*?${}"\\\u0000-\u001f]/u;

const DEFAULT_OVERRIDE: OverrideAction = 'DO_NOTHING';

interface ResolvedParameter {
  value: string;
  source: string;
}

/**
 * Evaluate a checked template for one request.
 * @example const r = evaluateTemplate(parsed, { parameters: { SerialNumber: 'A1' }, certificate: { certificateId }, templateType: 'FLEET_PROVISIONING' });
 */
export function evaluateTemplate(template: ParsedTemplate, ctx: EvaluationContext): EvaluateResult {
  const steps: string[] = [];
  try {
    return { ok: true, plan: new Evaluation(template, ctx, steps).plan(), steps };
  } catch (err) {
    if (!(err instanceof EvaluationFailure)) throw err;
    steps.push(`refused (${err.code}) at ${err.path}: ${err.message}`);
    return { ok: false, error: { code: err.code, path: err.path, message: err.message }, steps };
  }
}

class Evaluation implements EvaluationScope {
  private readonly declared: ReadonlyMap<string, ParameterDeclaration>;
  private readonly resolved = new Map<string, ResolvedParameter>();
  private readonly conditionValues = new Map<string, boolean>();
  private readonly resourceNames = new Map<string, string>();
  private readonly naming = new Set<string>();
  /** While evaluating a policy document: parameter values must be policy-safe. */
  private inPolicy: string | null = null;
  readonly mappings: Mappings;

  constructor(
    private readonly template: ParsedTemplate,
    private readonly ctx: EvaluationContext,
    private readonly steps: string[],
  ) {
    this.declared = new Map(template.parameters.map((p) => [p.name, p]));
    this.mappings = template.mappings;
  }

  plan(): ProvisioningPlan {
    this.resolveAll();
    const plan: ProvisioningPlan = { policies: [], deviceConfiguration: {} };
    for (const r of this.template.resources) {
      if (!this.included(r)) continue;
      const base = `Resources.${r.logicalId}.Properties`;
      if (r.type === 'AWS::IoT::Thing') plan.thing = this.thing(r, base);
      else if (r.type === 'AWS::IoT::Certificate') plan.certificate = this.certificate(r, base);
      else plan.policies.push(this.policy(r, base));
    }
    for (const [key, expr] of Object.entries(this.template.deviceConfiguration)) {
      const v = evaluateExpression(expr, `DeviceConfiguration.${key}`, this);
      if (v !== NO_VALUE) plan.deviceConfiguration[key] = asString(v, `DeviceConfiguration.${key}`);
    }
    return plan;
  }

  /** Every declared parameter gets its value now (so a missing one is refused whatever the conditions). */
  private resolveAll(): void {
    for (const name of Object.keys(this.ctx.parameters)) {
      if (!this.declared.has(name) && CERTIFICATE_PARAMETERS[name] === undefined) {
        this.steps.push(`parameter ${name}: given but not declared by the template (ignored)`);
      }
    }
    for (const p of this.template.parameters) this.resolve(p.name, `Parameters.${p.name}`);
  }

  private resolve(name: string, path: string): ResolvedParameter {
    const known = this.resolved.get(name);
    if (known) return known;
    const decl = this.declared.get(name);
    const fromRequest = this.fromRequest(name);
    let found: ResolvedParameter | undefined = fromRequest;
    if (!found && decl?.default !== undefined)
      found = { value: decl.default, source: 'the template default' };
    if (!found) {
      const certField = CERTIFICATE_PARAMETERS[name];
      throw new EvaluationFailure(
        'MissingParameter',
        decl ? `Parameters.${name}` : path,
        certField && this.ctx.certificate
          ? `The certificate has no ${certField} in its subject, and the template declares ${name} without a Default`
          : `Parameter ${name} has no value: pass it in the request's parameters${decl ? ', or give it a Default' : ''}`,
      );
    }
    if (decl && found.source !== 'the template default') {
      const problem = parameterProblem(decl, found.value);
      if (problem) {
        throw new EvaluationFailure(
          'InvalidParameter',
          `Parameters.${name}`,
          `Parameter ${name}: the value ${problem}`,
        );
      }
    }
    this.resolved.set(name, found);
    this.steps.push(`parameter ${name} = ${JSON.stringify(found.value)} (from ${found.source})`);
    return found;
  }

  /** A value from the certificate (AWS::IoT::Certificate::* when one is given) or from the request. */
  private fromRequest(name: string): ResolvedParameter | undefined {
    const certField = CERTIFICATE_PARAMETERS[name];
    const cert = this.ctx.certificate;
    if (certField !== undefined && cert) {
      if (Object.hasOwn(this.ctx.parameters, name)) {
        this.steps.push(`parameter ${name}: the request's value is ignored (it comes from the certificate)`);
      }
      const value = certField === 'certificateId' ? cert.certificateId : cert.subject?.[certField];
      return value === undefined ? undefined : { value, source: 'the certificate' };
    }
    if (!Object.hasOwn(this.ctx.parameters, name)) return undefined;
    const value = this.ctx.parameters[name];
    return typeof value === 'string' ? { value, source: 'the request' } : undefined;
  }

  ref(name: string, path: string): string | string[] {
    if (this.declared.has(name) || CERTIFICATE_PARAMETERS[name] !== undefined) {
      const { value } = this.resolve(name, path);
      if (this.inPolicy !== null && POLICY_UNSAFE.test(value)) {
        throw new EvaluationFailure(
          'InvalidParameter',
          path,
          `Parameter ${name} is used in the policy document of ${this.inPolicy}, and its value may not contain * ? $ { } " \\ or control characters there (a device could widen its own policy)`,
        );
      }
      const type = this.declared.get(name)?.type ?? 'String';
      return type === 'String' || type === 'Number' ? value : value.split(',').map((s) => s.trim());
    }
    return this.resourceName(name, path);
  }

  condition(name: string, path: string): boolean {
    const known = this.conditionValues.get(name);
    if (known !== undefined) return known;
    const body = this.template.conditions[name];
    if (body === undefined)
      throw new EvaluationFailure('InvalidTemplate', path, `No condition named '${name}'`);
    const value = evaluateCondition(body, `Conditions.${name}`, this);
    this.conditionValues.set(name, value);
    this.steps.push(`condition ${name} = ${value}`);
    return value;
  }

  private included(r: ResourceDeclaration): boolean {
    if (r.condition === undefined) return true;
    if (this.condition(r.condition, `Resources.${r.logicalId}.Condition`)) {
      this.steps.push(`resource ${r.logicalId} (${r.type}): included, condition ${r.condition} is true`);
      return true;
    }
    const mandatory =
      r.type === 'AWS::IoT::Certificate' ||
      (r.type === 'AWS::IoT::Thing' && this.ctx.templateType === 'FLEET_PROVISIONING');
    if (mandatory) {
      throw new EvaluationFailure(
        'ConditionFailed',
        `Resources.${r.logicalId}.Condition`,
        `Condition ${r.condition} is false for these parameters, so the ${r.type === 'AWS::IoT::Thing' ? 'thing' : 'certificate'} ${r.logicalId} would not be provisioned: the request is refused`,
      );
    }
    this.steps.push(`resource ${r.logicalId} (${r.type}): left out, condition ${r.condition} is false`);
    return false;
  }

  /** The Ref value of a resource: the thing's name, the certificate's id, a named policy's name. */
  private resourceName(logicalId: string, path: string): string {
    const known = this.resourceNames.get(logicalId);
    if (known !== undefined) return known;
    const r = this.template.resources.find((x) => x.logicalId === logicalId);
    if (!r)
      throw new EvaluationFailure(
        'InvalidTemplate',
        path,
        `'${logicalId}' is neither a parameter nor a resource`,
      );
    if (this.naming.has(logicalId)) {
      throw new EvaluationFailure('InvalidTemplate', path, `The name of ${logicalId} refers to itself`);
    }
    this.naming.add(logicalId);
    const base = `Resources.${logicalId}.Properties`;
    let name: string;
    if (r.type === 'AWS::IoT::Thing') name = this.property(r, base, 'ThingName') ?? '';
    else if (r.type === 'AWS::IoT::Policy') name = this.property(r, base, 'PolicyName') ?? '';
    else {
      const id = this.property(r, base, 'CertificateId') ?? this.ctx.certificate?.certificateId;
      if (id === undefined) {
        throw new EvaluationFailure(
          'InvalidTemplate',
          path,
          `The id of certificate ${logicalId} is known only once it is registered; Ref it where the certificate is given by CertificateId`,
        );
      }
      name = id;
    }
    this.naming.delete(logicalId);
    this.resourceNames.set(logicalId, name);
    return name;
  }

  /** A string property, or undefined when absent or AWS::NoValue. */
  private property(r: ResourceDeclaration, base: string, key: string): string | undefined {
    const expr = r.properties[key];
    if (expr === undefined) return undefined;
    const v = evaluateExpression(expr, `${base}.${key}`, this);
    return v === NO_VALUE ? undefined : asString(v, `${base}.${key}`);
  }

  private evaluated(r: ResourceDeclaration, base: string, key: string): Evaluated | undefined {
    const expr = r.properties[key];
    if (expr === undefined) return undefined;
    const v = evaluateExpression(expr, `${base}.${key}`, this);
    return v === NO_VALUE ? undefined : v;
  }

  private thing(r: ResourceDeclaration, base: string): NonNullable<ProvisioningPlan['thing']> {
    const thingName = this.resourceName(r.logicalId, `${base}.ThingName`);
    if (!THING_NAME.test(thingName)) {
      throw new EvaluationFailure(
        'InvalidParameter',
        `${base}.ThingName`,
        `The thing name ${JSON.stringify(thingName)} is not valid: 1 to 128 characters of a-z A-Z 0-9 : _ -`,
      );
    }
    const out: NonNullable<ProvisioningPlan['thing']> = {
      logicalId: r.logicalId,
      thingName,
      overrideSettings: {
        AttributePayload: r.overrideSettings.AttributePayload ?? DEFAULT_OVERRIDE,
        ThingTypeName: r.overrideSettings.ThingTypeName ?? DEFAULT_OVERRIDE,
        ThingGroups: r.overrideSettings.ThingGroups ?? DEFAULT_OVERRIDE,
      },
    };
    const attrs = this.evaluated(r, base, 'AttributePayload');
    if (attrs !== undefined) out.attributes = this.attributes(attrs, `${base}.AttributePayload`);
    const typeName = this.property(r, base, 'ThingTypeName');
    if (typeName !== undefined)
      out.thingTypeName = this.registryName(typeName, `${base}.ThingTypeName`, 'thing type');
    const groups = this.evaluated(r, base, 'ThingGroups');
    if (groups !== undefined) {
      out.thingGroups = asList(groups, `${base}.ThingGroups`).map((g, i) =>
        this.registryName(
          asString(g, `${base}.ThingGroups[${i}]`),
          `${base}.ThingGroups[${i}]`,
          'thing group',
        ),
      );
    }
    const billing = this.property(r, base, 'BillingGroup');
    if (billing !== undefined)
      out.billingGroup = this.registryName(billing, `${base}.BillingGroup`, 'billing group');
    this.steps.push(`thing ${thingName} (${r.logicalId})`);
    return out;
  }

  private attributes(v: Evaluated, path: string): Record<string, string> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new EvaluationFailure(
        'InvalidTemplate',
        path,
        'AttributePayload must evaluate to an object of names to strings',
      );
    }
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(v)) {
      const s = asString(value, `${path}.${name}`);
      if (!ATTRIBUTE_NAME.test(name)) {
        throw new EvaluationFailure(
          'InvalidTemplate',
          `${path}.${name}`,
          `Attribute name '${name}' is not valid: 1 to 128 of a-z A-Z 0-9 _ . , @ / : # -`,
        );
      }
      if (!ATTRIBUTE_VALUE.test(s)) {
        throw new EvaluationFailure(
          'InvalidParameter',
          `${path}.${name}`,
          `Attribute ${name}'s value ${JSON.stringify(s)} is not valid: up to 800 of a-z A-Z 0-9 _ . , @ / : # = [ ] -`,
        );
      }
      Object.defineProperty(out, name, { value: s, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  private registryName(name: string, path: string, what: string): string {
    if (!THING_NAME.test(name)) {
      throw new EvaluationFailure(
        'InvalidParameter',
        path,
        `The ${what} name ${JSON.stringify(name)} is not valid: 1 to 128 characters of a-z A-Z 0-9 : _ -`,
      );
    }
    return name;
  }

  private certificate(r: ResourceDeclaration, base: string): NonNullable<ProvisioningPlan['certificate']> {
    const out: NonNullable<ProvisioningPlan['certificate']> = {
      logicalId: r.logicalId,
      overrideSettings: { Status: r.overrideSettings.Status ?? DEFAULT_OVERRIDE },
    };
    const id = this.property(r, base, 'CertificateId');
    if (id !== undefined) out.certificateId = id;
    const pem = this.property(r, base, 'CertificatePem');
    if (pem !== undefined) out.certificatePem = pem;
    const ca = this.property(r, base, 'CACertificatePem');
    if (ca !== undefined) out.caCertificatePem = ca;
    const csr = this.property(r, base, 'CertificateSigningRequest');
    if (csr !== undefined) out.certificateSigningRequest = csr;
    const status = this.property(r, base, 'Status');
    if (status !== undefined) {
      const upper = status.toUpperCase();
      if (upper !== 'ACTIVE' && upper !== 'INACTIVE') {
        throw new EvaluationFailure(
          'InvalidParameter',
          `${base}.Status`,
          `Status must be ACTIVE or INACTIVE, not '${status}'`,
        );
      }
      out.status = upper;
    }
    this.steps.push(
      `certificate ${out.certificateId ?? '(from PEM or CSR)'} (${r.logicalId})${out.status ? `, status ${out.status}` : ''}`,
    );
    return out;
  }

  private policy(r: ResourceDeclaration, base: string): ProvisioningPlan['policies'][number] {
    if (r.properties.PolicyName !== undefined) {
      const policyName = this.resourceName(r.logicalId, `${base}.PolicyName`);
      if (!POLICY_NAME.test(policyName)) {
        throw new EvaluationFailure(
          'InvalidParameter',
          `${base}.PolicyName`,
          `The policy name ${JSON.stringify(policyName)} is not valid: 1 to 128 of a-z A-Z 0-9 _ + = , . @ -`,
        );
      }
      this.steps.push(`policy ${policyName} (${r.logicalId}): attach the existing policy`);
      return { logicalId: r.logicalId, policyName };
    }
    this.inPolicy = r.logicalId;
    let doc: Evaluated | undefined;
    try {
      doc = this.evaluated(r, base, 'PolicyDocument');
    } finally {
      this.inPolicy = null;
    }
    const path = `${base}.PolicyDocument`;
    let text: string;
    if (typeof doc === 'string') {
      text = doc;
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('not an object');
      } catch {
        throw new EvaluationFailure(
          'InvalidParameter',
          path,
          'PolicyDocument does not evaluate to a JSON object',
        );
      }
    } else if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
      text = JSON.stringify(doc);
    } else {
      throw new EvaluationFailure(
        'InvalidTemplate',
        path,
        'PolicyDocument must evaluate to a JSON object or its text',
      );
    }
    this.steps.push(`policy document of ${r.logicalId} (${text.length} characters)`);
    return { logicalId: r.logicalId, policyDocument: text };
  }
}
