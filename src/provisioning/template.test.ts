import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readJson } from './template-json.js';
import {
  evaluateTemplate,
  parseTemplate,
  type EvaluationContext,
  type ParsedTemplate,
  type ProvisioningPlan,
  type TemplateError,
} from './template.js';

// The template language: AWS IoT Developer Guide, "Provisioning templates" (parameters, resources,
// OverrideSettings, DeviceConfiguration, intrinsic functions) and "Just-in-time provisioning" (the
// AWS::IoT::Certificate::* parameters).

const CERT_ID = 'a'.repeat(64);

function parsed(doc: unknown): ParsedTemplate {
  const r = parseTemplate(typeof doc === 'string' ? doc : JSON.stringify(doc));
  if (!r.ok) throw new Error(`expected a valid template: ${JSON.stringify(r.errors)}`);
  return r.template;
}

function errorsOf(doc: unknown): TemplateError[] {
  const r = parseTemplate(typeof doc === 'string' ? doc : JSON.stringify(doc));
  if (r.ok) throw new Error('expected the template to be refused');
  return r.errors;
}

function planOf(doc: unknown, ctx: Partial<EvaluationContext> = {}): ProvisioningPlan {
  const r = evaluateTemplate(parsed(doc), { parameters: {}, templateType: 'FLEET_PROVISIONING', ...ctx });
  if (!r.ok) throw new Error(`expected a plan: ${JSON.stringify(r.error)}`);
  return r.plan;
}

function refusalOf(doc: unknown, ctx: Partial<EvaluationContext> = {}) {
  const r = evaluateTemplate(parsed(doc), { parameters: {}, templateType: 'FLEET_PROVISIONING', ...ctx });
  if (r.ok) throw new Error(`expected a refusal, got ${JSON.stringify(r.plan)}`);
  return r.error;
}

/** A template whose thing name is `expr`, with String parameters `params`. */
const named = (expr: unknown, params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  Parameters: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v ?? { Type: 'String' }])),
  Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: expr } } },
  ...extra,
});
const thingName = (doc: unknown, parameters: Record<string, string> = {}) =>
  planOf(doc, { parameters }).thing?.thingName;

/** The fleet provisioning template of the AWS guide's shape (thing, certificate by id, named policy). */
const fleetTemplate = {
  Parameters: {
    ThingName: { Type: 'String' },
    SerialNumber: { Type: 'String' },
    'AWS::IoT::Certificate::Id': { Type: 'String' },
  },
  Resources: {
    certificate: {
      Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'Active' },
      Type: 'AWS::IoT::Certificate',
    },
    policy: { Properties: { PolicyName: 'DevicePolicy' }, Type: 'AWS::IoT::Policy' },
    thing: {
      OverrideSettings: { AttributePayload: 'MERGE', ThingGroups: 'DO_NOTHING', ThingTypeName: 'REPLACE' },
      Properties: {
        AttributePayload: { serial: { Ref: 'SerialNumber' } },
        ThingGroups: ['fleet', 'v1'],
        ThingName: { Ref: 'ThingName' },
        ThingTypeName: 'sensor',
        BillingGroup: 'factory',
      },
      Type: 'AWS::IoT::Thing',
    },
  },
  DeviceConfiguration: { FallbackUrl: 'https://www.example.com/test-site', Serial: { Ref: 'SerialNumber' } },
};

describe('a fleet template (AWS guide shape)', () => {
  it('evaluates to a plan: thing, certificate from the claim, named policy, device configuration', () => {
    const r = evaluateTemplate(parsed(fleetTemplate), {
      parameters: { ThingName: 'dev-1', SerialNumber: 'SN1' },
      certificate: { certificateId: CERT_ID },
      templateType: 'FLEET_PROVISIONING',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan).toEqual({
      thing: {
        logicalId: 'thing',
        thingName: 'dev-1',
        attributes: { serial: 'SN1' },
        thingTypeName: 'sensor',
        thingGroups: ['fleet', 'v1'],
        billingGroup: 'factory',
        overrideSettings: { AttributePayload: 'MERGE', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
      },
      certificate: {
        logicalId: 'certificate',
        certificateId: CERT_ID,
        status: 'ACTIVE',
        overrideSettings: { Status: 'DO_NOTHING' },
      },
      policies: [{ logicalId: 'policy', policyName: 'DevicePolicy' }],
      deviceConfiguration: { FallbackUrl: 'https://www.example.com/test-site', Serial: 'SN1' },
    });
    expect(r.steps).toContain('parameter ThingName = "dev-1" (from the request)');
    expect(r.steps).toContain(`parameter AWS::IoT::Certificate::Id = "${CERT_ID}" (from the certificate)`);
  });

  it('a request cannot choose its certificate id: the certificate wins, and the trace says so', () => {
    const r = evaluateTemplate(parsed(fleetTemplate), {
      parameters: { ThingName: 'd', SerialNumber: 's', 'AWS::IoT::Certificate::Id': 'b'.repeat(64) },
      certificate: { certificateId: CERT_ID },
      templateType: 'FLEET_PROVISIONING',
    });
    expect(r.ok && r.plan.certificate?.certificateId).toBe(CERT_ID);
    expect(r.steps.join('\n')).toMatch(/request's value is ignored \(it comes from the certificate\)/);
  });

  it('without a certificate in the context (RegisterThing), certificate parameters come from the request', () => {
    const plan = planOf(fleetTemplate, {
      parameters: { ThingName: 'd', SerialNumber: 's', 'AWS::IoT::Certificate::Id': CERT_ID },
    });
    expect(plan.certificate?.certificateId).toBe(CERT_ID);
  });

  it('undeclared request parameters are ignored and traced', () => {
    const r = evaluateTemplate(parsed(named('x')), {
      parameters: { Extra: '1' },
      templateType: 'FLEET_PROVISIONING',
    });
    expect(r.ok).toBe(true);
    expect(r.steps).toContain('parameter Extra: given but not declared by the template (ignored)');
  });
});

describe('a JITP template (AWS guide shape)', () => {
  const jitp = {
    Parameters: {
      'AWS::IoT::Certificate::CommonName': { Type: 'String' },
      'AWS::IoT::Certificate::SerialNumber': { Type: 'String' },
      'AWS::IoT::Certificate::Country': { Type: 'String' },
      'AWS::IoT::Certificate::Id': { Type: 'String' },
    },
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: {
          ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' },
          AttributePayload: { version: 'v1', serialNumber: { Ref: 'AWS::IoT::Certificate::SerialNumber' } },
        },
      },
      certificate: {
        Type: 'AWS::IoT::Certificate',
        Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
      },
      policy: {
        Type: 'AWS::IoT::Policy',
        Properties: {
          PolicyDocument:
            '{ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action":["iot:Publish"], "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"] }] }',
        },
      },
    },
  };
  const cert = {
    certificateId: CERT_ID,
    subject: { CommonName: 'sensor-7', SerialNumber: '0042', Country: 'US' },
  };

  it('takes the parameters from the certificate subject', () => {
    const plan = planOf(jitp, { certificate: cert, templateType: 'JITP' });
    expect(plan.thing).toMatchObject({
      thingName: 'sensor-7',
      attributes: { version: 'v1', serialNumber: '0042' },
    });
    expect(plan.certificate).toMatchObject({ certificateId: CERT_ID, status: 'ACTIVE' });
    expect(JSON.parse(plan.policies[0]!.policyDocument!)).toMatchObject({ Version: '2012-10-17' });
  });

  it('refuses a certificate that lacks a declared subject field (AWS: it must carry them all)', () => {
    const e = refusalOf(jitp, {
      certificate: { certificateId: CERT_ID, subject: { CommonName: 'x', SerialNumber: '1' } },
      templateType: 'JITP',
    });
    expect(e).toMatchObject({ code: 'MissingParameter', path: 'Parameters.AWS::IoT::Certificate::Country' });
    expect(e.message).toMatch(/certificate has no Country/);
  });

  it('every subject field is a parameter', () => {
    const fields = [
      'CommonName',
      'Country',
      'Organization',
      'OrganizationalUnit',
      'DistinguishedNameQualifier',
      'StateName',
      'SerialNumber',
      'Locality',
      'Title',
      'Surname',
      'GivenName',
      'Initials',
      'Pseudonym',
      'GenerationQualifier',
    ];
    const subject = Object.fromEntries(fields.map((f, i) => [f, `v${i}`]));
    const doc = named({
      'Fn::Join': ['-', fields.map((f) => ({ Ref: `AWS::IoT::Certificate::${f}` }))],
    });
    expect(
      planOf(doc, { certificate: { certificateId: CERT_ID, subject }, templateType: 'JITP' }).thing
        ?.thingName,
    ).toBe(fields.map((_, i) => `v${i}`).join('-'));
  });
});

describe('parameters', () => {
  it('Default is used when the request has none, and the trace says which', () => {
    const doc = named({ Ref: 'Loc' }, { Loc: { Type: 'String', Default: 'WA' } });
    const r = evaluateTemplate(parsed(doc), { parameters: {}, templateType: 'FLEET_PROVISIONING' });
    expect(r.ok && r.plan.thing?.thingName).toBe('WA');
    expect(r.steps).toContain('parameter Loc = "WA" (from the template default)');
    expect(thingName(doc, { Loc: 'OR' })).toBe('OR');
  });

  it('a declared parameter without a value is MissingParameter, even if no resource uses it', () => {
    const e = refusalOf(named('x', { Serial: null }));
    expect(e).toMatchObject({ code: 'MissingParameter', path: 'Parameters.Serial' });
    expect(e.message).toMatch(/pass it in the request's parameters, or give it a Default/);
  });

  it('Number parameters must be numbers; MinValue and MaxValue bound them', () => {
    const doc = named(
      { 'Fn::Join': ['-', ['n', { Ref: 'N' }]] },
      { N: { Type: 'Number', MinValue: 1, MaxValue: 9 } },
    );
    expect(thingName(doc, { N: '5' })).toBe('n-5');
    for (const [v, m] of [
      ['x', /'x' is not a number/],
      ['0', /below the minimum 1/],
      ['10', /above the maximum 9/],
    ] as const) {
      const e = refusalOf(doc, { parameters: { N: v } });
      expect(e).toMatchObject({ code: 'InvalidParameter', path: 'Parameters.N' });
      expect(e.message).toMatch(m);
    }
  });

  it('AllowedValues, AllowedPattern, MinLength, MaxLength refuse with ConstraintDescription', () => {
    const doc = named(
      { Ref: 'Serial' },
      {
        Serial: {
          Type: 'String',
          AllowedPattern: 'SN[0-9]*',
          MinLength: 3,
          MaxLength: 6,
          ConstraintDescription: 'a factory serial number',
        },
        Region: { Type: 'String', AllowedValues: ['eu', 'us'], Default: 'eu' },
      },
    );
    expect(thingName(doc, { Serial: 'SN12' })).toBe('SN12');
    const bad = refusalOf(doc, { parameters: { Serial: 'XX12' } });
    expect(bad).toMatchObject({ code: 'InvalidParameter', path: 'Parameters.Serial' });
    expect(bad.message).toBe(
      "Parameter Serial: the value 'XX12' does not match the pattern SN[0-9]* (a factory serial number)",
    );
    expect(refusalOf(doc, { parameters: { Serial: 'SN' } }).message).toMatch(/shorter than 3/);
    expect(refusalOf(doc, { parameters: { Serial: 'SN12345' } }).message).toMatch(/longer than 6/);
    expect(refusalOf(doc, { parameters: { Serial: 'SN1', Region: 'ap' } }).message).toMatch(
      /'ap' is not one of the allowed values eu, us/,
    );
    // The pattern is anchored: a match inside the value is not enough.
    expect(refusalOf(doc, { parameters: { Serial: 'xSN1' } }).code).toBe('InvalidParameter');
  });

  it('list parameters give lists (comma separated), each item checked', () => {
    const doc = {
      Parameters: { Groups: { Type: 'CommaDelimitedList', AllowedValues: ['a', 'b', 'c'] } },
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 't', ThingGroups: { Ref: 'Groups' } } },
      },
    };
    expect(planOf(doc, { parameters: { Groups: 'a, b' } }).thing?.thingGroups).toEqual(['a', 'b']);
    expect(refusalOf(doc, { parameters: { Groups: 'a,z' } }).message).toMatch(/'z' is not one of/);
  });

  it('refuses bad declarations at parse time, with their paths', () => {
    const errs = errorsOf({
      Parameters: {
        A: { Type: 'Strin' },
        B: 'String',
        C: { Type: 'String', Default: 'x', AllowedValues: ['y'] },
        D: { Type: 'String', AllowedPattern: '(' },
        E: { Type: 'String', MinValue: 1 },
        F: { Type: 'String', Colour: 'red' },
        'AWS::IoT::Thing::Name': { Type: 'String' },
        'bad name': { Type: 'String' },
      },
      Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 'x' } } },
    });
    const byPath = Object.fromEntries(errs.map((e) => [e.path, e.message]));
    expect(byPath['Parameters.A.Type']).toMatch(/Type must be one of String, Number, List<String>/);
    expect(byPath['Parameters.B']).toMatch(/A parameter is an object/);
    expect(byPath['Parameters.C.Default']).toMatch(
      /The default value 'x' is not one of the allowed values y/,
    );
    expect(byPath['Parameters.D.AllowedPattern']).toMatch(/not a valid regular expression/);
    expect(byPath['Parameters.E.MinValue']).toMatch(/applies to Number and List<Number> parameters only/);
    expect(byPath['Parameters.F.Colour']).toMatch(
      /Unknown key 'Colour' in a parameter; allowed: Type, Default/,
    );
    expect(byPath['Parameters.AWS::IoT::Thing::Name']).toMatch(/is reserved/);
    expect(byPath['Parameters.bad name']).toMatch(/A parameter name is/);
  });
});

describe('intrinsic functions', () => {
  it('Ref: a parameter, a resource (thing name, certificate id, named policy)', () => {
    const doc = {
      Parameters: { S: { Type: 'String' } },
      Resources: {
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'S' } } },
        certificate: {
          Type: 'AWS::IoT::Certificate',
          Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' } },
        },
        policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: { 'Fn::Sub': '${thing}-policy' } } },
      },
      DeviceConfiguration: {
        thing: { Ref: 'thing' },
        cert: { Ref: 'certificate' },
        policy: { Ref: 'policy' },
      },
    };
    const plan = planOf(doc, { parameters: { S: 'dev' }, certificate: { certificateId: CERT_ID } });
    expect(plan.deviceConfiguration).toEqual({ thing: 'dev', cert: CERT_ID, policy: 'dev-policy' });
    expect(plan.policies[0]!.policyName).toBe('dev-policy');
  });

  it('Ref errors: undeclared names, non-strings, a policy given by document, a name cycle', () => {
    expect(errorsOf(named({ Ref: 'Nope' }))[0]).toMatchObject({
      path: 'Resources.thing.Properties.ThingName',
      message: expect.stringMatching(/'Nope' is neither a declared parameter nor a resource/),
    });
    expect(errorsOf(named({ Ref: 3 }))[0]!.message).toMatch(
      /Ref takes the name of a parameter or a resource/,
    );
    const docPolicy = named({ Ref: 'p' }, {}, {});
    (docPolicy.Resources as any).p = {
      Type: 'AWS::IoT::Policy',
      Properties: { PolicyDocument: { Statement: [] } },
    };
    expect(errorsOf(docPolicy)[0]!.message).toMatch(/'p' is neither a declared parameter nor a resource/);
    expect(errorsOf(named({ 'Fn::Sub': 'x-${thing}' }))[0]!.message).toMatch(
      /Resource names refer to each other in a cycle: thing -> thing/,
    );
  });

  it('Fn::Join joins a list with a delimiter; the list may come from a function', () => {
    expect(thingName(named({ 'Fn::Join': ['_', ['a', { Ref: 'P' }, 'c']] }, { P: null }), { P: 'b' })).toBe(
      'a_b_c',
    );
    expect(thingName(named({ 'Fn::Join': ['', { 'Fn::Split': [',', 'x,y'] }] }))).toBe('xy');
  });

  it('Fn::Join errors: arity, delimiter, a string where a list is needed', () => {
    expect(errorsOf(named({ 'Fn::Join': ['-'] }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::Join',
      message: 'Fn::Join takes a list of 2 arguments, not 1',
    });
    expect(errorsOf(named({ 'Fn::Join': [1, ['a']] }))[0]!.path).toBe(
      'Resources.thing.Properties.ThingName.Fn::Join[0]',
    );
    expect(errorsOf(named({ 'Fn::Join': ['-', 'ab'] }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::Join[1]',
      message: 'Must give a list, but this gives a string',
    });
    expect(errorsOf(named({ 'Fn::Join': ['-', [['nested']]] }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::Join[1][0]',
      message: 'Must give a string, but this gives a list',
    });
  });

  it('Fn::Select picks by index; out of range is caught statically or refused at run time', () => {
    expect(thingName(named({ 'Fn::Select': [1, ['a', 'b']] }))).toBe('b');
    expect(
      thingName(named({ 'Fn::Select': ['0', { 'Fn::Split': ['.', { Ref: 'P' }] }] }, { P: null }), {
        P: 'x.y',
      }),
    ).toBe('x');
    expect(errorsOf(named({ 'Fn::Select': [2, ['a', 'b']] }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::Select[0]',
      message: 'Index 2 is past the end of the list (2 items, so 0 to 1)',
    });
    expect(errorsOf(named({ 'Fn::Select': ['one', ['a']] }))[0]!.message).toMatch(/whole number, not 'one'/);
    expect(errorsOf(named({ 'Fn::Select': [-1, ['a']] }))[0]!.message).toMatch(/whole number from 0/);
    const e = refusalOf(named({ 'Fn::Select': [3, { 'Fn::Split': [',', { Ref: 'P' }] }] }, { P: null }), {
      parameters: { P: 'a,b' },
    });
    expect(e).toMatchObject({
      code: 'InvalidParameter',
      path: 'Resources.thing.Properties.ThingName.Fn::Select[0]',
    });
  });

  it('Fn::Split splits a string into a list (delimiter must be a non-empty literal)', () => {
    const doc = {
      Parameters: { G: { Type: 'String' } },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          Properties: { ThingName: 't', ThingGroups: { 'Fn::Split': ['|', { Ref: 'G' }] } },
        },
      },
    };
    expect(planOf(doc, { parameters: { G: 'a|b|c' } }).thing?.thingGroups).toEqual(['a', 'b', 'c']);
    expect(errorsOf(named({ 'Fn::Select': [0, { 'Fn::Split': ['', 'ab'] }] }))[0]!.message).toMatch(
      /delimiter of Fn::Split must be a non-empty string literal/,
    );
    expect(errorsOf(named({ 'Fn::Split': [',', 'a,b'] }))[0]!.message).toBe(
      'Must give a string, but this gives a list',
    );
  });

  it('Fn::Sub: ${Param}, ${resource}, ${!Literal}, and the two-argument form', () => {
    expect(thingName(named({ 'Fn::Sub': 'dev-${P}' }, { P: null }), { P: '7' })).toBe('dev-7');
    const literal = planOf({
      ...named('t'),
      DeviceConfiguration: { v: { 'Fn::Sub': '${!iot:ClientId}/${thing}' } },
    }).deviceConfiguration;
    expect(literal).toEqual({ v: '${iot:ClientId}/t' });
    expect(
      thingName(named({ 'Fn::Sub': ['${a}-${P}', { a: { 'Fn::Select': [0, ['first']] } }] }, { P: null }), {
        P: 'x',
      }),
    ).toBe('first-x');
  });

  it('Fn::Sub errors: unknown variable (with the policy-variable hint), unterminated, list parameter', () => {
    expect(errorsOf(named({ 'Fn::Sub': 'x-${Nope}' }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::Sub',
      message: '${Nope} is not a declared parameter, a resource or a variable of this Fn::Sub',
    });
    expect(errorsOf(named({ 'Fn::Sub': '${iot:Connection.Thing.ThingName}' }))[0]!.message).toMatch(
      /for a literal policy variable write \$\{!iot:Connection.Thing.ThingName\}/,
    );
    expect(errorsOf(named({ 'Fn::Sub': 'x-${P' }, { P: null }))[0]!.message).toMatch(/Unterminated '\$\{'/);
    expect(errorsOf(named({ 'Fn::Sub': '${L}' }, { L: { Type: 'List<String>' } }))[0]!.message).toMatch(
      /is a list parameter; Fn::Sub takes strings/,
    );
    expect(errorsOf(named({ 'Fn::Sub': ['${a}', 'notAnObject'] }))[0]!.path).toBe(
      'Resources.thing.Properties.ThingName.Fn::Sub[1]',
    );
    expect(errorsOf(named({ 'Fn::Sub': 5 }))[0]!.message).toMatch(/Fn::Sub takes a list of 2 arguments/);
  });

  it('Fn::FindInMap looks up Mappings by parameter; unknown keys are refused at parse or run time', () => {
    const doc = named(
      { 'Fn::FindInMap': ['Sites', { Ref: 'Site' }, 'prefix'] },
      { Site: null },
      {
        Mappings: { Sites: { paris: { prefix: 'fr-par' }, lyon: { prefix: 'fr-lyo', groups: ['a', 'b'] } } },
      },
    );
    expect(thingName(doc, { Site: 'lyon' })).toBe('fr-lyo');
    const e = refusalOf(doc, { parameters: { Site: 'nice' } });
    expect(e).toMatchObject({
      code: 'InvalidParameter',
      path: 'Resources.thing.Properties.ThingName.Fn::FindInMap[1]',
    });
    expect(e.message).toBe("Mapping 'Sites' has no key 'nice' (keys: paris, lyon)");
    const m = { Mappings: { Sites: { paris: { prefix: 'p' } } } };
    expect(errorsOf(named({ 'Fn::FindInMap': ['Nope', 'paris', 'prefix'] }, {}, m))[0]!.message).toMatch(
      /No mapping named 'Nope' under Mappings \(declared: Sites\)/,
    );
    expect(errorsOf(named({ 'Fn::FindInMap': ['Sites', 'rome', 'prefix'] }, {}, m))[0]!.path).toMatch(
      /FindInMap\[1\]$/,
    );
    expect(errorsOf(named({ 'Fn::FindInMap': ['Sites', 'paris', 'x'] }, {}, m))[0]!.path).toMatch(
      /FindInMap\[2\]$/,
    );
    expect(errorsOf(named({ 'Fn::FindInMap': ['Sites', 'paris'] }, {}, m))[0]!.message).toMatch(
      /3 arguments, not 2/,
    );
    expect(errorsOf(named('x', {}, { Mappings: { M: { k: { v: { Ref: 'x' } } } } }))[0]).toMatchObject({
      path: 'Mappings.M.k.v',
    });
  });

  it('Fn::If with Fn::Equals, Fn::Not, Fn::And, Fn::Or and {"Condition"}', () => {
    const doc = named(
      { 'Fn::If': ['Prod', { 'Fn::Sub': 'p-${S}' }, { 'Fn::If': ['EuOrUs', 'other', 'lab'] }] },
      { S: null, Env: { Type: 'String', Default: 'lab' }, Region: { Type: 'String', Default: 'ap' } },
      {
        Conditions: {
          IsProd: { 'Fn::Equals': [{ Ref: 'Env' }, 'prod'] },
          HasSerial: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'S' }, ''] }] },
          Prod: { 'Fn::And': [{ Condition: 'IsProd' }, { Condition: 'HasSerial' }] },
          EuOrUs: {
            'Fn::Or': [
              { 'Fn::Equals': ['eu', { Ref: 'Region' }] },
              { 'Fn::Equals': ['us', { Ref: 'Region' }] },
            ],
          },
        },
      },
    );
    expect(thingName(doc, { S: '1', Env: 'prod' })).toBe('p-1');
    expect(thingName(doc, { S: '', Env: 'prod' })).toBe('lab');
    expect(thingName(doc, { S: '1', Env: 'lab', Region: 'eu' })).toBe('other');
    const r = evaluateTemplate(parsed(doc), { parameters: { S: '1' }, templateType: 'FLEET_PROVISIONING' });
    expect(r.ok && r.plan.thing?.thingName).toBe('lab');
    expect(r.steps).toEqual(
      expect.arrayContaining([
        'condition IsProd = false',
        'condition Prod = false',
        'condition EuOrUs = false',
      ]),
    );
  });

  it('Fn::Equals compares values: 5 and "5" are equal, lists compare by items', () => {
    const doc = named(
      { 'Fn::If': ['C', 'yes', 'no'] },
      {},
      { Conditions: { C: { 'Fn::Equals': [5, '5'] } } },
    );
    expect(thingName(doc)).toBe('yes');
    const lists = named(
      { 'Fn::If': ['C', 'yes', 'no'] },
      {},
      {
        Conditions: { C: { 'Fn::Equals': [{ 'Fn::Split': [',', 'a,b'] }, ['a', 'b']] } },
      },
    );
    expect(thingName(lists)).toBe('yes');
  });

  it('condition errors: undeclared names, wrong functions, arity, cycles', () => {
    expect(errorsOf(named({ 'Fn::If': ['Nope', 'a', 'b'] }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::If[0]',
      message: "No condition named 'Nope' in the Conditions section",
    });
    expect(errorsOf(named({ 'Fn::Equals': ['a', 'a'] }))[0]!.message).toMatch(
      /Fn::Equals is allowed only in the Conditions section/,
    );
    const cond = (c: unknown) => errorsOf(named('x', {}, { Conditions: { C: c } }))[0]!;
    expect(cond({ 'Fn::Join': ['', []] }).message).toMatch(/Fn::Join gives a value, not a condition/);
    expect(cond('yes').message).toMatch(/A condition is one of Fn::Equals/);
    expect(cond({ 'Fn::And': [{ Condition: 'C2' }] })).toMatchObject({ path: 'Conditions.C.Fn::And' });
    expect(cond({ 'Fn::Equals': ['a'] }).message).toBe('Fn::Equals takes a list of 2 arguments, not 1');
    expect(cond({ 'Fn::Or': new Array(11).fill({ 'Fn::Equals': ['a', 'a'] }) }).message).toMatch(
      /2 to 10 arguments, not 11/,
    );
    const cyc = errorsOf(
      named('x', {}, { Conditions: { A: { Condition: 'B' }, B: { 'Fn::Not': [{ Condition: 'A' }] } } }),
    );
    expect(cyc[0]!.message).toBe('Conditions refer to each other in a cycle: A -> B -> A');
  });

  it('AWS::NoValue drops a property, a list item or a DeviceConfiguration key', () => {
    const doc = {
      Parameters: { T: { Type: 'String', Default: '' } },
      Conditions: { HasType: { 'Fn::Not': [{ 'Fn::Equals': [{ Ref: 'T' }, ''] }] } },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          Properties: {
            ThingName: 't',
            ThingTypeName: { 'Fn::If': ['HasType', { Ref: 'T' }, { Ref: 'AWS::NoValue' }] },
            ThingGroups: ['g1', { 'Fn::If': ['HasType', 'typed', { Ref: 'AWS::NoValue' }] }],
          },
        },
      },
      DeviceConfiguration: { type: { 'Fn::If': ['HasType', { Ref: 'T' }, { Ref: 'AWS::NoValue' }] } },
    };
    const untyped = planOf(doc);
    expect(untyped.thing).not.toHaveProperty('thingTypeName');
    expect(untyped.thing?.thingGroups).toEqual(['g1']);
    expect(untyped.deviceConfiguration).toEqual({});
    const typed = planOf(doc, { parameters: { T: 'sensor' } });
    expect(typed.thing).toMatchObject({ thingTypeName: 'sensor', thingGroups: ['g1', 'typed'] });
    expect(typed.deviceConfiguration).toEqual({ type: 'sensor' });
    expect(
      errorsOf(named({ 'Fn::Join': ['', [{ 'Fn::Join': ['', { Ref: 'AWS::NoValue' }] }]] }))[0]!.message,
    ).toMatch(/AWS::NoValue is allowed only as a property value or in a branch of Fn::If/);
  });

  it('an unknown function, or a function beside other keys, is refused at its path', () => {
    expect(errorsOf(named({ 'Fn::GetAtt': ['thing', 'Arn'] }))[0]).toEqual({
      path: 'Resources.thing.Properties.ThingName.Fn::GetAtt',
      message:
        "Unknown intrinsic function 'Fn::GetAtt'; the template language has Ref, Fn::Join, Fn::Select, Fn::Split, Fn::Sub, Fn::FindInMap, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition",
    });
    expect(errorsOf(named({ Ref: 'x', Other: 1 }))[0]!.message).toMatch(
      /An intrinsic function must be the only key of its object; found also "Other"/,
    );
  });
});

describe('resources', () => {
  it('refuses unknown types, keys and properties, and more than one thing or certificate', () => {
    const errs = errorsOf({
      Resources: {
        a: { Type: 'AWS::IoT::Widget', Properties: {} },
        b: {
          Type: 'AWS::IoT::Thing',
          Properties: { ThingName: 'x', Colour: 'red', PackageVersions: {} },
          Extra: 1,
        },
        c: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 'y' } },
        d: { Type: 'AWS::IoT::Thing', Properties: {} },
      },
      Outputs: {},
    });
    const byPath = Object.fromEntries(errs.map((e) => [e.path, e.message]));
    expect(byPath['Resources.a.Type']).toMatch(
      /Unknown resource type "AWS::IoT::Widget"; allowed: AWS::IoT::Thing, AWS::IoT::Certificate, AWS::IoT::Policy/,
    );
    expect(byPath['Resources.b.Extra']).toMatch(
      /Unknown key 'Extra' in a resource; allowed: Type, Properties, OverrideSettings, Condition/,
    );
    expect(byPath['Resources.b.Properties.Colour']).toMatch(
      /allowed: ThingName, AttributePayload, ThingTypeName, ThingGroups, BillingGroup/,
    );
    expect(byPath['Resources.b.Properties.PackageVersions']).toMatch(/not supported by Thingstead/);
    expect(byPath['Resources.c']).toMatch(/at most one AWS::IoT::Thing \(already declared: b\)/);
    expect(byPath['Outputs']).toMatch(
      /Unknown key 'Outputs' in the template; allowed: Parameters, Mappings, Conditions, Resources, DeviceConfiguration/,
    );
    expect(errorsOf({ Resources: { d: { Type: 'AWS::IoT::Thing', Properties: {} } } })[0]).toEqual({
      path: 'Resources.d.Properties.ThingName',
      message: 'A thing resource needs ThingName',
    });
    expect(errorsOf({})[0]).toMatchObject({ path: 'Resources' });
    expect(errorsOf('[]')[0]!.message).toMatch(/A template is a JSON object/);
  });

  it('OverrideSettings: only the settings and actions each type takes', () => {
    const t = (o: unknown, type = 'AWS::IoT::Thing', props: unknown = { ThingName: 'x' }) =>
      errorsOf({ Resources: { r: { Type: type, Properties: props, OverrideSettings: o } } })[0]!;
    expect(t({ AttributePayload: 'SMASH' })).toEqual({
      path: 'Resources.r.OverrideSettings.AttributePayload',
      message:
        'OverrideSettings.AttributePayload must be one of MERGE, REPLACE, DO_NOTHING, FAIL, not "SMASH"',
    });
    expect(t({ ThingTypeName: 'MERGE' }).message).toMatch(
      /must be one of REPLACE, DO_NOTHING, FAIL, not "MERGE"/,
    );
    expect(t({ ThingName: 'REPLACE' }).message).toMatch(
      /Unknown key 'ThingName' in the OverrideSettings of AWS::IoT::Thing/,
    );
    expect(t('REPLACE').message).toMatch(/OverrideSettings must be an object/);
    expect(t({ Status: 'MERGE' }, 'AWS::IoT::Certificate', { CertificateId: 'c' }).message).toMatch(
      /must be one of REPLACE, DO_NOTHING, FAIL/,
    );
    expect(t({ X: 'REPLACE' }, 'AWS::IoT::Policy', { PolicyName: 'p' }).message).toMatch(
      /take no OverrideSettings/,
    );
  });

  it('certificate: exactly one source, CACertificatePem with a PEM, Status ACTIVE or INACTIVE', () => {
    const c = (props: unknown) =>
      errorsOf({ Resources: { cert: { Type: 'AWS::IoT::Certificate', Properties: props } } })[0]!;
    expect(c({}).message).toMatch(
      /exactly one of CertificateId, CertificatePem or CertificateSigningRequest/,
    );
    expect(c({ CertificateId: 'a', CertificatePem: 'b' }).message).toMatch(
      /found CertificateId and CertificatePem/,
    );
    expect(c({ CertificateId: 'a', CACertificatePem: 'b' }).path).toBe(
      'Resources.cert.Properties.CACertificatePem',
    );
    expect(c({ CertificateId: 'a', Status: 'On' }).message).toMatch(
      /Status must be ACTIVE or INACTIVE \(any case\), not 'On'/,
    );
    const bulk = planOf(
      {
        Parameters: { CSR: { Type: 'String' } },
        Resources: {
          cert: {
            Type: 'AWS::IoT::Certificate',
            Properties: { CertificateSigningRequest: { Ref: 'CSR' }, Status: 'inactive' },
            OverrideSettings: { Status: 'REPLACE' },
          },
        },
      },
      { parameters: { CSR: '-----BEGIN CERTIFICATE REQUEST-----' } },
    );
    expect(bulk.certificate).toEqual({
      logicalId: 'cert',
      certificateSigningRequest: '-----BEGIN CERTIFICATE REQUEST-----',
      status: 'INACTIVE',
      overrideSettings: { Status: 'REPLACE' },
    });
    const pem = planOf({
      Resources: {
        cert: { Type: 'AWS::IoT::Certificate', Properties: { CertificatePem: 'P', CACertificatePem: 'CA' } },
      },
    });
    expect(pem.certificate).toMatchObject({ certificatePem: 'P', caCertificatePem: 'CA' });
  });

  it('Ref to a certificate given by PEM needs the certificate in the context', () => {
    const doc = {
      Resources: {
        cert: { Type: 'AWS::IoT::Certificate', Properties: { CertificatePem: 'P' } },
        thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 't' } },
      },
      DeviceConfiguration: { id: { Ref: 'cert' } },
    };
    expect(refusalOf(doc)).toMatchObject({ code: 'InvalidTemplate', path: 'DeviceConfiguration.id' });
    expect(planOf(doc, { certificate: { certificateId: CERT_ID } }).deviceConfiguration.id).toBe(CERT_ID);
  });

  it('policy: PolicyName or PolicyDocument (text or object), at most 10', () => {
    const p = (props: unknown) =>
      errorsOf({ Resources: { p: { Type: 'AWS::IoT::Policy', Properties: props } } })[0]!;
    expect(p({}).message).toMatch(/exactly one of PolicyName \(an existing policy\) or PolicyDocument/);
    expect(p({ PolicyName: 'a', PolicyDocument: '{}' }).message).toMatch(/exactly one/);
    expect(p({ PolicyDocument: '{"Version": ' })).toMatchObject({
      path: 'Resources.p.Properties.PolicyDocument',
      message: expect.stringMatching(/PolicyDocument is not a JSON object: .*line 1, column 13/),
    });
    expect(p({ PolicyDocument: 7 }).message).toMatch(/PolicyDocument is a JSON object, or its JSON text/);
    const many = Object.fromEntries(
      Array.from({ length: 11 }, (_, i) => [
        `p${i}`,
        { Type: 'AWS::IoT::Policy', Properties: { PolicyName: `n${i}` } },
      ]),
    );
    expect(errorsOf({ Resources: many })[0]).toEqual({
      path: 'Resources.p10',
      message: 'A template may declare at most 10 policies',
    });
    const objectDoc = planOf({
      Resources: {
        p: {
          Type: 'AWS::IoT::Policy',
          Properties: {
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
            },
          },
        },
      },
    });
    expect(JSON.parse(objectDoc.policies[0]!.policyDocument!)).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }],
    });
  });

  it('a parameter cannot bring wildcards, policy variables or JSON syntax into a policy document', () => {
    const doc = {
      Parameters: { Serial: { Type: 'String' } },
      Resources: {
        p: {
          Type: 'AWS::IoT::Policy',
          Properties: {
            PolicyDocument: {
              'Fn::Sub':
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/dev/${Serial}"}]}',
            },
          },
        },
      },
    };
    const ok = planOf(doc, { parameters: { Serial: 'SN-1' } });
    expect(JSON.parse(ok.policies[0]!.policyDocument!).Statement[0].Resource).toMatch(/topic\/dev\/SN-1$/);
    for (const evil of ['*', 'a?', '${iot:ClientId}', 'x"],"Resource":["*', 'a\\b']) {
      const e = refusalOf(doc, { parameters: { Serial: evil } });
      expect(e.code).toBe('InvalidParameter');
      expect(e.message).toMatch(/may not contain \* \? \$ \{ \} " \\ or control characters there/);
    }
    // The same value is fine outside a policy document (the thing-name rules judge it there).
    expect(refusalOf(named({ Ref: 'S' }, { S: null }), { parameters: { S: '*' } }).message).toMatch(
      /thing name "\*" is not valid/,
    );
  });

  it('names and attributes follow the registry rules', () => {
    const e = refusalOf(named({ Ref: 'S' }, { S: null }), { parameters: { S: 'has space' } });
    expect(e).toEqual({
      code: 'InvalidParameter',
      path: 'Resources.thing.Properties.ThingName',
      message: 'The thing name "has space" is not valid: 1 to 128 characters of a-z A-Z 0-9 : _ -',
    });
    expect(refusalOf(named({ Ref: 'S' }, { S: null }), { parameters: { S: 'x'.repeat(129) } }).code).toBe(
      'InvalidParameter',
    );
    const attrs = {
      Parameters: { V: { Type: 'String' } },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          Properties: { ThingName: 't', AttributePayload: { a: { Ref: 'V' } }, ThingGroups: [{ Ref: 'V' }] },
        },
      },
    };
    expect(refusalOf(attrs, { parameters: { V: 'no spaces' } }).path).toBe(
      'Resources.thing.Properties.AttributePayload.a',
    );
    expect(refusalOf(attrs, { parameters: { V: 'ok$' } }).message).toMatch(
      /Attribute a's value "ok\$" is not valid/,
    );
    expect(
      errorsOf({
        Resources: {
          thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: 't', AttributePayload: { a: 1 } } },
        },
      })[0],
    ).toMatchObject({ path: 'Resources.thing.Properties.AttributePayload.a' });
  });

  it('a resource Condition: false leaves out a policy; refuses a fleet thing (ConditionFailed)', () => {
    const doc = {
      Parameters: { Model: { Type: 'String' } },
      Conditions: {
        Known: {
          'Fn::Or': [{ 'Fn::Equals': [{ Ref: 'Model' }, 'm1'] }, { 'Fn::Equals': [{ Ref: 'Model' }, 'm2'] }],
        },
        IsM2: { 'Fn::Equals': [{ Ref: 'Model' }, 'm2'] },
      },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          Condition: 'Known',
          Properties: { ThingName: { 'Fn::Sub': '${Model}-x' } },
        },
        extra: { Type: 'AWS::IoT::Policy', Condition: 'IsM2', Properties: { PolicyName: 'M2Extras' } },
      },
    };
    expect(planOf(doc, { parameters: { Model: 'm2' } }).policies).toHaveLength(1);
    const m1 = evaluateTemplate(parsed(doc), {
      parameters: { Model: 'm1' },
      templateType: 'FLEET_PROVISIONING',
    });
    expect(m1.ok && m1.plan.policies).toEqual([]);
    expect(m1.steps).toContain('resource extra (AWS::IoT::Policy): left out, condition IsM2 is false');
    const e = refusalOf(doc, { parameters: { Model: 'zz' } });
    expect(e).toEqual({
      code: 'ConditionFailed',
      path: 'Resources.thing.Condition',
      message:
        'Condition Known is false for these parameters, so the thing thing would not be provisioned: the request is refused',
    });
    // JITP: a thing left out is a certificate-only registration.
    const jitp = evaluateTemplate(parsed(doc), { parameters: { Model: 'zz' }, templateType: 'JITP' });
    expect(jitp.ok && jitp.plan.thing).toBeUndefined();
    expect(
      errorsOf({ ...doc, Resources: { t: { ...doc.Resources.thing, Condition: 'Nope' } } })[0]!.path,
    ).toBe('Resources.t.Condition');
  });

  it('a certificate left out by its Condition is refused for both types', () => {
    const doc = {
      Conditions: { Never: { 'Fn::Equals': ['a', 'b'] } },
      Resources: {
        cert: { Type: 'AWS::IoT::Certificate', Condition: 'Never', Properties: { CertificateId: 'c' } },
      },
    };
    expect(refusalOf(doc).code).toBe('ConditionFailed');
    expect(refusalOf(doc, { templateType: 'JITP' }).code).toBe('ConditionFailed');
  });

  it('a value of the wrong kind that only the parameters decide is InvalidTemplate at run time', () => {
    const doc = named(
      { 'Fn::FindInMap': ['M', { Ref: 'P' }, 'v'] },
      { P: null },
      { Mappings: { M: { one: { v: 'ok' }, many: { v: ['x', 'y'] } } } },
    );
    expect(thingName(doc, { P: 'one' })).toBe('ok');
    expect(refusalOf(doc, { parameters: { P: 'many' } })).toEqual({
      code: 'InvalidTemplate',
      path: 'Resources.thing.Properties.ThingName',
      message: 'Must evaluate to a string, but gave a list',
    });
  });

  it('DeviceConfiguration values must give strings', () => {
    expect(errorsOf({ ...named('x'), DeviceConfiguration: { n: 5 } })[0]).toEqual({
      path: 'DeviceConfiguration.n',
      message: 'Must be a string, not number (write "5" for the text)',
    });
    expect(errorsOf({ ...named('x'), DeviceConfiguration: [] })[0]!.message).toBe(
      'DeviceConfiguration must be an object',
    );
  });
});

describe('JSON syntax', () => {
  it('names line and column', () => {
    const body = '{\n  "Resources": {\n    "thing": { "Type": "AWS::IoT::Thing" "Properties": {} }\n  }\n}';
    const e = errorsOf(body)[0]!;
    expect(e).toMatchObject({ path: '', line: 3, column: 42 });
    expect(e.message).toBe(
      `The template is not valid JSON: Expected ',' or '}' after the value of "Type", found '"' (line 3, column 42)`,
    );
  });

  it('refuses duplicate keys, trailing commas, unterminated strings, and deep nesting', () => {
    expect(errorsOf('{"Resources": {}, "Resources": {}}')[0]!.message).toMatch(
      /Duplicate key "Resources".*line 1, column 19/,
    );
    expect(errorsOf('{"a": [1, 2, ]}')[0]!.message).toMatch(
      /Trailing comma before '\]' \(remove this ','\) \(line 1, column 12\)/,
    );
    expect(errorsOf('{"a": "b')[0]!.message).toMatch(/Unterminated string.*line 1, column 7/);
    expect(errorsOf('')[0]!.message).toMatch(/found end of the document/);
    expect(errorsOf('{} x')[0]!.message).toMatch(/Unexpected 'x' after the end of the document/);
    expect(errorsOf('['.repeat(100_000))[0]!.message).toMatch(/nests deeper than 32 levels/);
  });

  it('readJson agrees with JSON.parse on every JSON text without duplicate keys', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 8 }), (text) => {
        const r = readJson(text);
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.value).toEqual(JSON.parse(text));
      }),
      { seed: 12, numRuns: 300 },
    );
  });

  it('a key such as __proto__ is an ordinary key, not a prototype change', () => {
    const r = readJson('{"__proto__": {"polluted": true}}');
    expect(r.ok && Object.keys(r.value as object)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('properties (fast-check)', () => {
  it('parseTemplate never throws: any text gives a template or errors with paths', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json({ maxDepth: 6 })), (text) => {
        const r = parseTemplate(text);
        if (!r.ok) for (const e of r.errors) expect(typeof e.path).toBe('string');
      }),
      { seed: 3, numRuns: 400 },
    );
  });

  it('evaluateTemplate never throws: any parameter values give a plan or a coded refusal', () => {
    const doc = parsed({
      Parameters: {
        A: { Type: 'String' },
        B: { Type: 'String', Default: 'b', AllowedPattern: '[a-z]*' },
        N: { Type: 'Number', Default: '1' },
        L: { Type: 'CommaDelimitedList', Default: 'x,y' },
      },
      Mappings: { M: { b: { v: 'mapped' } } },
      Conditions: { IsB: { 'Fn::Equals': [{ Ref: 'B' }, 'b'] } },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          Properties: {
            ThingName: { 'Fn::Join': ['-', [{ Ref: 'A' }, { 'Fn::Select': [0, { Ref: 'L' }] }]] },
            ThingGroups: { Ref: 'L' },
            AttributePayload: {
              n: { Ref: 'N' },
              m: { 'Fn::If': ['IsB', { 'Fn::FindInMap': ['M', { Ref: 'B' }, 'v'] }, 'none'] },
            },
          },
        },
        p: {
          Type: 'AWS::IoT::Policy',
          Properties: {
            PolicyDocument: {
              'Fn::Sub':
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"${A}"}]}',
            },
          },
        },
      },
      DeviceConfiguration: { a: { 'Fn::Sub': '${A}/${B}' } },
    });
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('A', 'B', 'N', 'L', 'Z'), fc.string({ maxLength: 20 })),
        (parameters) => {
          const r = evaluateTemplate(doc, { parameters, templateType: 'FLEET_PROVISIONING' });
          if (r.ok) {
            expect(r.plan.thing?.thingName).toMatch(/^[a-zA-Z0-9:_-]{1,128}$/);
            expect(() => JSON.parse(r.plan.policies[0]!.policyDocument!)).not.toThrow();
          } else {
            expect(['MissingParameter', 'InvalidParameter', 'ConditionFailed', 'InvalidTemplate']).toContain(
              r.error.code,
            );
            expect(r.error.path).not.toBe('');
          }
        },
      ),
      { seed: 5, numRuns: 500 },
    );
  });

  it('Fn::Join of Fn::Split is the identity for any text and delimiter', () => {
    const doc = parsed(
      named(
        't',
        { S: null, D: null },
        {
          DeviceConfiguration: { v: { 'Fn::Join': ['|', { 'Fn::Split': ['|', { Ref: 'S' }] }] } },
        },
      ),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = evaluateTemplate(doc, { parameters: { S: s, D: 'x' }, templateType: 'FLEET_PROVISIONING' });
        expect(r.ok && r.plan.deviceConfiguration.v).toBe(s);
      }),
      { seed: 9, numRuns: 200 },
    );
  });
});

describe('the examples in docs/provisioning-templates.md', () => {
  const docs = readFileSync(new URL('../../docs/provisioning-templates.md', import.meta.url), 'utf8');
  const examples = [...docs.matchAll(/```json\n(\{\n {2}"Parameters"[\s\S]*?)\n```/g)].map((m) => m[1]!);

  it('the fleet example provisions a least-privilege device; the JITP example reads the certificate', () => {
    expect(examples).toHaveLength(2);
    const [fleet, jitp] = examples.map((text) => parsed(text));
    const r = evaluateTemplate(fleet!, {
      parameters: { SerialNumber: 'AB12CD34', Model: 'm2' },
      certificate: { certificateId: CERT_ID },
      templateType: 'FLEET_PROVISIONING',
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.plan.thing).toMatchObject({ thingName: 'm2-AB12CD34', thingGroups: ['gateways'] });
    expect(r.plan.deviceConfiguration).toEqual({ telemetryTopic: 'dt/m2-AB12CD34/telemetry', model: 'm2' });
    const policy = JSON.parse(r.plan.policies[0]!.policyDocument!);
    expect(policy.Statement[0].Resource).toBe(
      'arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}',
    );
    expect(
      evaluateTemplate(fleet!, { parameters: { SerialNumber: 'short' }, templateType: 'FLEET_PROVISIONING' }),
    ).toMatchObject({ ok: false, error: { code: 'InvalidParameter', path: 'Parameters.SerialNumber' } });
    const subject = { CommonName: 'pump-7', SerialNumber: '42', Organization: 'Acme Devices' };
    const j = evaluateTemplate(jitp!, {
      parameters: {},
      certificate: { certificateId: CERT_ID, subject },
      templateType: 'JITP',
    });
    expect(j.ok && j.plan.thing?.thingName).toBe('pump-7');
    const other = evaluateTemplate(jitp!, {
      parameters: {},
      certificate: { certificateId: CERT_ID, subject: { ...subject, Organization: 'Evil' } },
      templateType: 'JITP',
    });
    expect(other).toMatchObject({ ok: false, error: { code: 'InvalidParameter' } });
  });
});
