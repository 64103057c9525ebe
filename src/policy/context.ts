/**
 * The request context policies are evaluated against: who is connecting (client id, source IP), the
 * thing attached to the principal, and the fields of its certificate (reference §9.4).
 * Built once per connection; its values feed both policy variables and condition keys.
 */

/** Distinguished-name and alternative-name fields of a certificate, by AWS attribute name. */
export interface CertificateFields {
  /** e.g. { CommonName: ['dev1'], Organization: ['Acme'] }, values in certificate order. */
  readonly subject: Readonly<Record<string, readonly string[]>>;
  readonly issuer: Readonly<Record<string, readonly string[]>>;
  /** e.g. { DNSName: ['a.example'], RFC822Name: [...] } */
  readonly subjectAltNames?: Readonly<Record<string, readonly string[]>>;
  readonly issuerAltNames?: Readonly<Record<string, readonly string[]>>;
  readonly serialNumber?: string;
}

export interface AuthContext {
  readonly clientId?: string | undefined;
  readonly sourceIp?: string | undefined;
  readonly secureTransport?: boolean | undefined;
  /** The thing attached to the principal (iot:Connection.Thing.*). */
  readonly thing?:
    | {
        readonly name: string;
        readonly typeName?: string | undefined;
        readonly attributes?: Readonly<Record<string, string>> | undefined;
      }
    | undefined;
  /** Is the principal attached to the thing named by the client id (iot:Connection.Thing.IsAttached). */
  readonly isAttached?: boolean | undefined;
  readonly certificate?: CertificateFields | undefined;
  /** Evaluation time for aws:CurrentTime / aws:EpochTime (default: now). */
  readonly now?: Date | undefined;
}

/** Max values of a multi-valued certificate field (§9.4: arrays are cut to 5 items). */
const MAX_LIST = 5;
/** §9.4: longer values are left unresolved. */
const MAX_VALUE = 1024;
/**
 * Characters that make a value unsafe to substitute into a resource. AWS applies `* $ + ? #` to
 * certificate variables; Thingstead applies it to every variable and adds `/`, so that a hostile client
 * id (`a/b`, `+`, `#`) cannot reach into another client's topic space. A statement whose variable is
 * unresolved does not match (it only ever narrows what is allowed).
 */
const UNSAFE = /[*$+?#/{}]/;

/** Resolved keys of one context: lookups for condition keys (multi-valued) and variable values. */
export interface ContextValues {
  /** Values of a condition key, undefined when the key is absent. */
  get(key: string): readonly string[] | undefined;
  /** Single value for `${name}` substitution, undefined when unresolvable or unsafe. */
  variable(name: string): string | undefined;
}

function addDn(
  map: Map<string, string[]>,
  prefix: string,
  fields: Readonly<Record<string, readonly string[]>> | undefined,
): void {
  if (!fields) return;
  const all: string[] = [];
  for (const [attr, values] of Object.entries(fields)) {
    if (values.length === 0) continue;
    const key = `${prefix}.${attr}`;
    map.set(key, [values[0]!]);
    values.slice(0, MAX_LIST).forEach((v, i) => map.set(`${key}.${i + 1}`, [v]));
    map.set(`${key}.List`, values.slice(0, MAX_LIST));
    all.push(...values.slice(0, MAX_LIST).map((v) => `${attr}=${v}`));
  }
  if (all.length) map.set(`${prefix}.List`, all);
}

/** Build the key/value view of a context (once per connection). */
export function contextValues(ctx: AuthContext): ContextValues {
  const map = new Map<string, string[]>();
  const now = ctx.now ?? new Date();
  map.set('aws:CurrentTime', [now.toISOString()]);
  map.set('aws:EpochTime', [String(Math.floor(now.getTime() / 1000))]);
  if (ctx.clientId !== undefined) map.set('iot:ClientId', [ctx.clientId]);
  if (ctx.sourceIp) map.set('aws:SourceIp', [ctx.sourceIp.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')]);
  if (ctx.secureTransport !== undefined) map.set('aws:SecureTransport', [String(ctx.secureTransport)]);
  map.set('iot:Connection.Thing.IsAttached', [String(ctx.isAttached === true)]);
  if (ctx.thing) {
    map.set('iot:Connection.Thing.ThingName', [ctx.thing.name]);
    if (ctx.thing.typeName) map.set('iot:Connection.Thing.ThingTypeName', [ctx.thing.typeName]);
    for (const [k, v] of Object.entries(ctx.thing.attributes ?? {})) {
      map.set(`iot:Connection.Thing.Attributes[${k}]`, [v]);
    }
  }
  const cert = ctx.certificate;
  if (cert) {
    addDn(map, 'iot:Certificate.Subject', cert.subject);
    addDn(map, 'iot:Certificate.Issuer', cert.issuer);
    addDn(map, 'iot:Certificate.Subject.AlternativeName', cert.subjectAltNames);
    addDn(map, 'iot:Certificate.Issuer.AlternativeName', cert.issuerAltNames);
    if (cert.serialNumber) map.set('iot:Certificate.SerialNumber', [cert.serialNumber]);
    map.set(
      'iot:Certificate.AvailableKeys',
      [...map.keys()].filter((k) => k.startsWith('iot:Certificate.')),
    );
  }
  // Condition keys are case-insensitive (IAM); variables are matched exactly first.
  const lower = new Map<string, string[]>();
  for (const [k, v] of map) lower.set(k.toLowerCase(), v);
  return {
    get: (key) => map.get(key) ?? lower.get(key.toLowerCase()),
    variable(name) {
      const values = map.get(name);
      if (!values || values.length !== 1) return undefined;
      const v = values[0]!;
      if (v.length === 0 || v.length > MAX_VALUE || UNSAFE.test(v)) return undefined;
      return v;
    },
  };
}
