import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bindPolicies, compilePolicy, parsePolicyDocument, resourceArn, type AuthContext } from './index.js';

const scope = { region: 'us-east-1', accountId: '123456789012' };
const A = 'arn:aws:iot:us-east-1:123456789012';
const topic = (t: string) => resourceArn(scope, 'topic', t);
const filter = (f: string) => resourceArn(scope, 'topicfilter', f);
const client = (c: string) => resourceArn(scope, 'client', c);

function policy(statements: object[], name = 'p'): ReturnType<typeof compilePolicy> {
  return compilePolicy(name, '1', JSON.stringify({ Version: '2012-10-17', Statement: statements }));
}
function bound(statements: object[], ctx: AuthContext = { clientId: 'c1' }) {
  return bindPolicies([policy(statements)], ctx);
}
function malformed(doc: unknown): string {
  try {
    parsePolicyDocument(typeof doc === 'string' ? doc : JSON.stringify(doc));
  } catch (err) {
    expect((err as Error).name).toBe('MalformedPolicyException');
    return (err as Error).message;
  }
  throw new Error('expected MalformedPolicyException');
}

describe('policy documents (reference §9.1)', () => {
  it('accepts the seed document and single-statement forms', () => {
    const doc = parsePolicyDocument(
      JSON.stringify({
        Version: '2012-10-17',
        Statement: { Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/iot_data` },
      }),
    );
    expect(doc.statements).toHaveLength(1);
    expect(doc.statements[0]!.action).toEqual(['iot:Publish']);
  });

  it('points at the JSON path of what is wrong', () => {
    expect(malformed('{"Statement": [')).toMatch(/not valid JSON/);
    expect(malformed([])).toMatch(/must be a JSON object/);
    expect(malformed({ Version: '2012-10-17' })).toMatch(/^Statement: is required/);
    expect(malformed({ Version: '2011-01-01', Statement: [] })).toMatch(/^Version: must be "2012-10-17"/);
    expect(malformed({ Statement: [] })).toMatch(/^Statement: must contain at least one/);
    expect(
      malformed({
        Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }, { Effect: 'Permit' }],
      }),
    ).toMatch(/^Statement\[1\]\.Effect: must be "Allow" or "Deny", got "Permit"/);
    expect(malformed({ Statement: [{ Effect: 'Allow', Resource: '*' }] })).toMatch(
      /^Statement\[0\]: a statement needs exactly one of Action or NotAction/,
    );
    expect(malformed({ Statement: [{ Effect: 'Allow', Action: 'iot:Publish' }] })).toMatch(
      /Resource or NotResource/,
    );
    expect(
      malformed({ Statement: [{ Effect: 'Allow', Action: ['iot:Publish', 'Publish'], Resource: '*' }] }),
    ).toMatch(/^Statement\[0\]\.Action\[1\]: "Publish" is not an action/);
    expect(
      malformed({ Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: ['*', 'topic/a'] }] }),
    ).toMatch(/^Statement\[0\]\.Resource\[1\]: "topic\/a" is not a resource/);
    expect(
      malformed({
        Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/\${iot:ClientID}` }],
      }),
    ).toMatch(
      /Statement\[0\]\.Resource: unknown policy variable \$\{iot:ClientID\} \(did you mean \$\{iot:ClientId\}\?\)/,
    );
    expect(
      malformed({
        Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/\${iot:ClientId` }],
      }),
    ).toMatch(/unterminated policy variable/);
    expect(
      malformed({
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:Connect',
            Resource: '*',
            Condition: { StringEqualz: { 'iot:ClientId': 'a' } },
          },
        ],
      }),
    ).toMatch(/^Statement\[0\]\.Condition\.StringEqualz: unknown condition operator/);
    expect(
      malformed({
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:Connect',
            Resource: '*',
            Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'yes' } },
          },
        ],
      }),
    ).toMatch(/Bool takes "true" or "false"/);
    expect(
      malformed({ Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*', Foo: 1 }] }),
    ).toMatch(/^Statement\[0\]\.Foo: unknown statement element/);
  });

  it('refuses documents over 2048 characters excluding whitespace (reference §11)', () => {
    const big = {
      Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/${'x'.repeat(2100)}` }],
    };
    expect(malformed(big)).toMatch(/maximum is 2048/);
    // whitespace does not count
    const spaced = JSON.stringify(
      { Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }] },
      null,
      400,
    );
    expect(() => parsePolicyDocument(spaced)).not.toThrow();
  });
});

describe('evaluation (reference §9.1–9.3)', () => {
  it('default deny, allow, explicit deny wins regardless of order', () => {
    const allowAll = { Effect: 'Allow', Action: 'iot:*', Resource: '*' };
    const denySecret = { Effect: 'Deny', Action: 'iot:Publish', Resource: `${A}:topic/secret/*` };
    expect(bindPolicies([], {}).allowed('iot:Publish', topic('a'))).toBe(false);
    for (const order of [
      [allowAll, denySecret],
      [denySecret, allowAll],
    ]) {
      const b = bound(order);
      expect(b.allowed('iot:Publish', topic('a'))).toBe(true);
      expect(b.allowed('iot:Publish', topic('secret/x'))).toBe(false);
      const e = b.explain('iot:Publish', topic('secret/x'));
      expect(e.reason).toBe('explicit-deny');
      expect(e.statement?.effect).toBe('Deny');
    }
    expect(bound([denySecret]).explain('iot:Publish', topic('a')).reason).toBe('implicit-deny');
  });

  it('deny in one policy beats allow in another', () => {
    const b = bindPolicies(
      [
        policy([{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }], 'allow'),
        policy([{ Effect: 'Deny', Action: 'iot:Publish', Resource: `${A}:topic/x` }], 'deny'),
      ],
      {},
    );
    const e = b.explain('iot:Publish', topic('x'));
    expect(e.allowed).toBe(false);
    expect(e.statement?.policyName).toBe('deny');
    expect(b.explain('iot:Publish', topic('y')).statement?.policyName).toBe('allow');
  });

  it('actions: wildcards, case-insensitive, NotAction', () => {
    const b = bound([
      { Effect: 'Allow', Action: 'iot:*Shadow', Resource: '*' },
      { Effect: 'Allow', NotAction: ['iot:Publish', 'iot:Receive'], Resource: `${A}:topicfilter/*` },
    ]);
    expect(b.allowed('iot:GetThingShadow', `${A}:thing/t`)).toBe(true);
    expect(b.allowed('IOT:getthingshadow', `${A}:thing/t`)).toBe(true);
    expect(b.allowed('iot:Publish', `${A}:thing/t`)).toBe(false);
    expect(b.allowed('iot:Subscribe', filter('a'))).toBe(true);
    expect(b.allowed('iot:Publish', `${A}:topicfilter/a`)).toBe(false);
  });

  it('resource `*` matches across `/` and `?` exactly one character', () => {
    const b = bound([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: [`${A}:topic/a/*`, `${A}:topic/b/?`] },
    ]);
    expect(b.allowed('iot:Publish', topic('a/x/y/z'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('a/'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('a'))).toBe(false);
    expect(b.allowed('iot:Publish', topic('b/1'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('b/12'))).toBe(false);
    expect(b.allowed('iot:Publish', topic('b/'))).toBe(false);
  });

  it('the wildcard trap: MQTT + and # are literals in policies (reference §9.3)', () => {
    const b = bound([
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${A}:topicfilter/a/+` },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${A}:topicfilter/b/*` },
      { Effect: 'Deny', Action: 'iot:Subscribe', Resource: `${A}:topicfilter/b/restricted/*` },
      { Effect: 'Allow', Action: 'iot:Receive', Resource: `${A}:topic/b/*` },
      { Effect: 'Deny', Action: 'iot:Receive', Resource: `${A}:topic/b/restricted/*` },
    ]);
    // topicfilter/a/+ authorizes only the literal filter a/+
    expect(b.allowed('iot:Subscribe', filter('a/+'))).toBe(true);
    expect(b.allowed('iot:Subscribe', filter('a/x'))).toBe(false);
    expect(b.allowed('iot:Subscribe', filter('a/#'))).toBe(false);
    // topicfilter/b/* authorizes b/# and b/+/x; the Deny on b/restricted/* does not stop b/#
    expect(b.allowed('iot:Subscribe', filter('b/#'))).toBe(true);
    expect(b.allowed('iot:Subscribe', filter('b/+/x'))).toBe(true);
    expect(b.allowed('iot:Subscribe', filter('b/restricted/x'))).toBe(false);
    // ... which is why Receive is checked per delivered topic
    expect(b.allowed('iot:Receive', topic('b/open'))).toBe(true);
    expect(b.allowed('iot:Receive', topic('b/restricted/x'))).toBe(false);
    // a topic policy does not authorize a literal # publish either way
    expect(
      bound([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/a/#` }]).allowed(
        'iot:Publish',
        topic('a/b'),
      ),
    ).toBe(false);
  });

  it('NotResource', () => {
    const b = bound([{ Effect: 'Allow', Action: 'iot:Receive', NotResource: `${A}:topic/private/*` }]);
    expect(b.allowed('iot:Receive', topic('public/x'))).toBe(true);
    expect(b.allowed('iot:Receive', topic('private/x'))).toBe(false);
  });

  it('literal escapes ${*} ${?} ${$} (reference §9.3)', () => {
    const b = bound([
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/a/\${*}/\${?}/\${$}x` },
    ]);
    expect(b.allowed('iot:Publish', topic('a/*/?/$x'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('a/b/c/$x'))).toBe(false);
  });

  it('the decision cache returns the same answers', () => {
    const b = bound([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${A}:topic/a/*` }]);
    for (let i = 0; i < 3000; i++) {
      expect(b.allowed('iot:Publish', topic(`a/${i}`))).toBe(true);
      expect(b.allowed('iot:Publish', topic(`b/${i}`))).toBe(false);
    }
  });
});

describe('policy variables (reference §9.4)', () => {
  const thingScoped = [
    {
      Effect: 'Allow',
      Action: 'iot:Connect',
      Resource: `${A}:client/\${iot:Connection.Thing.ThingName}`,
      Condition: { Bool: { 'iot:Connection.Thing.IsAttached': ['true'] } },
    },
    {
      Effect: 'Allow',
      Action: ['iot:Publish', 'iot:Receive'],
      Resource: [
        `${A}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/*`,
        `${A}:topic/dev/\${iot:ClientId}/*`,
      ],
    },
    {
      Effect: 'Allow',
      Action: 'iot:Subscribe',
      Resource: [
        `${A}:topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/*`,
        `${A}:topicfilter/dev/\${iot:ClientId}/*`,
      ],
    },
  ];

  it('the worked device policy of §9.6 scopes a thing to its own topics', () => {
    const t1 = bound(thingScoped, { clientId: 't1', thing: { name: 't1' }, isAttached: true });
    expect(t1.allowed('iot:Connect', client('t1'))).toBe(true);
    expect(t1.allowed('iot:Connect', client('t2'))).toBe(false);
    expect(t1.allowed('iot:Publish', topic('$aws/things/t1/shadow/update'))).toBe(true);
    expect(t1.allowed('iot:Subscribe', filter('$aws/things/t1/shadow/get/+'))).toBe(true);
    // one thing reaching for another's topics
    expect(t1.allowed('iot:Publish', topic('$aws/things/t2/shadow/update'))).toBe(false);
    expect(t1.allowed('iot:Subscribe', filter('$aws/things/t2/shadow/get/+'))).toBe(false);
    expect(t1.allowed('iot:Receive', topic('dev/t2/x'))).toBe(false);
    // not attached: no connect
    const na = bound(thingScoped, { clientId: 't1', thing: { name: 't1' }, isAttached: false });
    expect(na.allowed('iot:Connect', client('t1'))).toBe(false);
  });

  it.each(['*', '#', '+', 'a/b', '${iot:ClientId}', 'dev/*', '?', 'x}', ''])(
    'a hostile client id %j never widens a match',
    (hostile) => {
      const b = bound(thingScoped, { clientId: hostile, thing: { name: 't1' }, isAttached: true });
      for (const victim of ['dev/t2/x', 'dev/x', 'dev//x', 'dev/a/b/x', 'dev/+/x', 'dev/#']) {
        expect(b.allowed('iot:Publish', topic(victim))).toBe(false);
        expect(b.allowed('iot:Receive', topic(victim))).toBe(false);
        expect(b.allowed('iot:Subscribe', filter(victim))).toBe(false);
        expect(b.allowed('iot:Subscribe', filter('dev/#'))).toBe(false);
        expect(b.allowed('iot:Subscribe', filter('dev/+/x'))).toBe(false);
      }
      // the id that is literally "${iot:ClientId}" does not match the literal text either
      expect(b.allowed('iot:Publish', topic('dev/${iot:ClientId}/x'))).toBe(false);
    },
  );

  it('property: for any client id, allowed topics stay under dev/<id>/ with the id as literal text', () => {
    const b0 = policy(thingScoped);
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 20 }), (id, t) => {
        const b = bindPolicies([b0], { clientId: id, thing: { name: 't1' }, isAttached: true });
        if (b.allowed('iot:Publish', topic(t)) && !t.startsWith('$aws/things/t1/shadow/')) {
          return t.startsWith(`dev/${id}/`) && !/[*$+?#/{}]/.test(id);
        }
        return true;
      }),
    );
  });

  it('thing type, attributes, certificate fields, missing values do not match', () => {
    const b = bound(
      [
        {
          Effect: 'Allow',
          Action: 'iot:Publish',
          Resource: [
            `${A}:topic/type/\${iot:Connection.Thing.ThingTypeName}`,
            `${A}:topic/site/\${iot:Connection.Thing.Attributes[site]}`,
            `${A}:topic/cn/\${iot:Certificate.Subject.CommonName}`,
            `${A}:topic/ou2/\${iot:Certificate.Subject.OrganizationalUnit.2}`,
            `${A}:topic/issuer/\${iot:Certificate.Issuer.Organization}`,
            `${A}:topic/missing/\${iot:Connection.Thing.Attributes[nope]}`,
            `${A}:topic/serial/\${iot:Certificate.SerialNumber}`,
          ],
        },
      ],
      {
        clientId: 'c',
        thing: { name: 't', typeName: 'sensor', attributes: { site: 'berlin', bad: 'a#b' } },
        certificate: {
          subject: { CommonName: ['dev-1'], OrganizationalUnit: ['ou-a', 'ou-b'] },
          issuer: { Organization: ['Acme'] },
          serialNumber: '0a1b',
        },
      },
    );
    expect(b.allowed('iot:Publish', topic('type/sensor'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('site/berlin'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('cn/dev-1'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('ou2/ou-b'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('issuer/Acme'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('serial/0a1b'))).toBe(true);
    expect(b.allowed('iot:Publish', topic('missing/'))).toBe(false);
    expect(b.allowed('iot:Publish', topic('missing/${iot:Connection.Thing.Attributes[nope]}'))).toBe(false);
  });

  it('an unresolvable variable in an Allow NotResource drops the statement (never widens)', () => {
    const b = bound(
      [
        {
          Effect: 'Allow',
          Action: 'iot:Publish',
          NotResource: `${A}:topic/\${iot:Connection.Thing.ThingName}/private`,
        },
      ],
      {
        clientId: 'c',
      },
    );
    expect(b.allowed('iot:Publish', topic('anything'))).toBe(false);
  });
});

describe('conditions (reference §9.5)', () => {
  const allowIf = (Condition: object) => [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: '*', Condition },
  ];
  const can = (Condition: object, ctx: AuthContext) =>
    bound(allowIf(Condition), ctx).allowed('iot:Connect', client('c'));

  it('String operators, with variables in values', () => {
    expect(can({ StringEquals: { 'iot:ClientId': ['a', 'b'] } }, { clientId: 'b' })).toBe(true);
    expect(can({ StringEquals: { 'iot:ClientId': 'a' } }, { clientId: 'b' })).toBe(false);
    expect(can({ StringNotEquals: { 'iot:ClientId': ['a', 'b'] } }, { clientId: 'c' })).toBe(true);
    expect(can({ StringNotEquals: { 'iot:ClientId': ['a', 'b'] } }, { clientId: 'a' })).toBe(false);
    expect(can({ StringEqualsIgnoreCase: { 'iot:ClientId': 'ABC' } }, { clientId: 'abc' })).toBe(true);
    expect(can({ StringLike: { 'iot:ClientId': 'sensor-*' } }, { clientId: 'sensor-12' })).toBe(true);
    expect(can({ StringNotLike: { 'iot:ClientId': 'sensor-*' } }, { clientId: 'sensor-12' })).toBe(false);
    expect(
      can(
        { StringEquals: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}' } },
        { clientId: 't1', thing: { name: 't1' } },
      ),
    ).toBe(true);
    expect(
      can(
        { StringEquals: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}' } },
        { clientId: 't2', thing: { name: 't1' } },
      ),
    ).toBe(false);
    // keys are case-insensitive
    expect(can({ StringEquals: { 'IOT:CLIENTID': 'x' } }, { clientId: 'x' })).toBe(true);
  });

  it('missing keys, IfExists, Null', () => {
    expect(can({ StringEquals: { 'iot:Connection.Thing.ThingTypeName': 'x' } }, {})).toBe(false);
    expect(can({ StringEqualsIfExists: { 'iot:Connection.Thing.ThingTypeName': 'x' } }, {})).toBe(true);
    expect(can({ StringNotEquals: { 'iot:Connection.Thing.ThingTypeName': 'x' } }, {})).toBe(true);
    expect(can({ Null: { 'iot:Connection.Thing.ThingTypeName': 'true' } }, {})).toBe(true);
    expect(can({ Null: { 'iot:Connection.Thing.ThingTypeName': 'false' } }, {})).toBe(false);
  });

  it('IpAddress and NotIpAddress (IPv4, IPv6, mapped)', () => {
    expect(can({ IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }, { sourceIp: '127.0.0.1' })).toBe(true);
    expect(can({ IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } }, { sourceIp: '::ffff:127.0.0.1' })).toBe(
      true,
    );
    expect(can({ IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '::1/128'] } }, { sourceIp: '::1' })).toBe(true);
    expect(can({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, { sourceIp: '127.0.0.1' })).toBe(true);
    expect(can({ NotIpAddress: { 'aws:SourceIp': '127.0.0.1' } }, { sourceIp: '127.0.0.1' })).toBe(false);
  });

  it('Numeric, Date, Bool, Arn, ForAllValues / ForAnyValue', () => {
    const ctx: AuthContext = {
      thing: { name: 't', attributes: { fw: '12' } },
      certificate: { subject: { OrganizationalUnit: ['a', 'b'] }, issuer: {} },
      now: new Date('2026-01-01T00:00:00Z'),
    };
    expect(can({ NumericGreaterThanEquals: { 'iot:Connection.Thing.Attributes[fw]': '10' } }, ctx)).toBe(
      true,
    );
    expect(can({ NumericLessThan: { 'iot:Connection.Thing.Attributes[fw]': '10' } }, ctx)).toBe(false);
    expect(can({ DateLessThan: { 'aws:CurrentTime': '2027-01-01T00:00:00Z' } }, ctx)).toBe(true);
    expect(can({ DateGreaterThan: { 'aws:CurrentTime': '2027-01-01T00:00:00Z' } }, ctx)).toBe(false);
    expect(can({ Bool: { 'iot:Connection.Thing.IsAttached': 'false' } }, ctx)).toBe(true);
    expect(
      can(
        {
          'ForAllValues:StringEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['a', 'b', 'c'] },
        },
        ctx,
      ),
    ).toBe(true);
    expect(
      can({ 'ForAllValues:StringEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['a'] } }, ctx),
    ).toBe(false);
    expect(
      can({ 'ForAnyValue:StringEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['b'] } }, ctx),
    ).toBe(true);
    expect(
      can({ 'ForAnyValue:StringEquals': { 'iot:Certificate.Subject.OrganizationalUnit.List': ['z'] } }, ctx),
    ).toBe(false);
    expect(can({ ArnLike: { 'iot:ClientId': 'arn:*' } }, { clientId: 'arn:aws:x' })).toBe(true);
  });

  it('several operators and keys are ANDed', () => {
    const cond = { StringEquals: { 'iot:ClientId': 'a' }, IpAddress: { 'aws:SourceIp': '127.0.0.1' } };
    expect(can(cond, { clientId: 'a', sourceIp: '127.0.0.1' })).toBe(true);
    expect(can(cond, { clientId: 'a', sourceIp: '127.0.0.2' })).toBe(false);
  });
});
