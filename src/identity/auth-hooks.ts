import { timingSafeEqual, type X509Certificate } from 'node:crypto';
import type { AuthHooks, AuthzSubject, ClientSummary, ConnectionInfo, Principal } from '../mqtt/index.js';
import { Counter, rateLimitedLog, type Logger, type Registry } from '../observability/index.js';
import {
  ANONYMOUS_TARGET,
  bindPolicies,
  type ArnScope,
  type AuthContext,
  type BoundPolicies,
  type CertificateFields,
  type PolicyService,
} from '../policy/index.js';
import { certificateInfo } from './certificates.js';
import type { CertificateService } from './certificates-service.js';
import { verifySigV4 } from '../sigv4/index.js';

/**
 * Device authentication and policy enforcement for the broker (the AuthHooks of src/mqtt/hooks.ts).
 *
 * - authenticate (async, once per CONNECT): a mutual-TLS client certificate must be registered, ACTIVE and
 *   issued by an ACTIVE CA; MQTT over WebSocket may instead carry a SigV4 presigned URL (reference §7.3);
 *   the plain listener takes an access key id / secret as username / password; anonymous loopback clients
 *   are accepted in dev mode. The thing attached to the certificate becomes the connection's thing.
 * - authorize* (sync, hot path): the principal's policies (its certificate's and its thing's groups', with
 *   ancestors) are bound once per connection and policy generation, then decided through a per-connection
 *   cache (CONVENTIONS #7). Policy changes and `refresh` bump the generation, so live connections rebind.
 *   What reacts to change events (disconnects, re-checks) is `auth-hooks-enforce.ts`.
 */

/** What the registry tells about principals and things (adapted from the registry in platform wiring). */
export interface PrincipalDirectory {
  /** Names of the things a principal (certificate ARN) is attached to. */
  thingsOfPrincipal(principalArn: string): Promise<readonly string[]>;
  describeThing(
    thingName: string,
  ): Promise<{ typeName?: string | undefined; attributes?: Record<string, string> | undefined } | undefined>;
  /** Names of the thing groups a thing is in, including every ancestor group. */
  groupsOfThing(thingName: string): Promise<readonly string[]>;
}

/** A principal with everything policy evaluation needs, resolved once per CONNECT (and on refresh). */
export interface ResolvedPrincipal {
  readonly principal: Principal;
  /** Policy targets: certificate ARN and thing-group ARNs, or `anonymous`. */
  readonly targets: readonly string[];
  readonly things: readonly string[];
  readonly thing?: {
    name: string;
    typeName?: string | undefined;
    attributes?: Record<string, string> | undefined;
  };
  readonly certificate?: CertificateFields;
  /** Issuing CA of a certificate principal (null: registered without CA). */
  readonly caId?: string | null;
  /** Access-key principals are authorized by role. */
  readonly role?: 'admin' | 'read-only';
}

export interface RefreshScope {
  readonly thingName?: string | undefined;
  /** A certificate ARN. */
  readonly principal?: string | undefined;
  readonly thingGroupName?: string | undefined;
}

export interface AccessKeyLookup {
  lookup(
    accessKeyId: string,
  ): Promise<{ secretAccessKey: string; role: 'admin' | 'read-only'; name?: string } | undefined>;
}

export interface DeviceAuthOptions {
  readonly certificates: CertificateService;
  readonly policies: PolicyService;
  readonly directory: PrincipalDirectory;
  readonly scope: ArnScope;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Dev mode: anonymous loopback clients (authorized by policies attached to `anonymous`). */
  readonly allowAnonymous: boolean;
  readonly accessKeys?: AccessKeyLookup | undefined;
}

export interface DeviceAuth extends AuthHooks {
  /** Resolve a principal (certificate ARN or `anonymous`) as a connection with `clientId` would see it. */
  resolve(principalArn: string, clientId?: string): Promise<ResolvedPrincipal>;
  /** The request context of a resolved principal (for TestAuthorization and the simulator). */
  contextFor(resolved: ResolvedPrincipal, clientId: string | undefined, info?: ConnectionInfo): AuthContext;
  /**
   * Re-resolve the principals of live connections `clients` (after thing attachments, group memberships
   * or attributes changed) and bump the generation; the caller then re-checks iot:Connect
   * (`broker.reauthorize()`). `scope` limits the work to the connections it can concern (a thing, a
   * principal, a group); without it every live certificate connection is refreshed.
   */
  refresh(clients: readonly ClientSummary[], scope?: RefreshScope): Promise<void>;
  /** Issuing CA of a live connection's certificate (undefined: unknown principal or not a certificate). */
  caIdOf(principal: Principal): string | null | undefined;
  /** True while dev mode allows anonymous clients everything (no policy attached to `anonymous`). */
  anonymousAllowsAll(): boolean;
  /**
   * Any IoT policy action on a full resource ARN for an authenticated subject, through the same policies
   * and per-generation binding as publish (not cached per resource: for HTTP requests, not the MQTT hot path).
   * @example auth.authorizeAction(subject, 'iot:GetThingShadow', 'arn:aws:iot:us-east-1:000000000000:thing/t1')
   */
  authorizeAction(subject: AuthzSubject, action: string, resourceArn: string): boolean;
}

const isLoopback = (addr: string) =>
  addr === '::1' || addr === '::ffff:127.0.0.1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');

const READ_ONLY_ACTIONS = new Set(['iot:Connect', 'iot:Subscribe', 'iot:Receive']);
const STATE = Symbol('thingstead.authz');

/** @example const auth = createDeviceAuth({ certificates, policies, directory, scope, logger, metrics, allowAnonymous }); */
export function createDeviceAuth(options: DeviceAuthOptions): DeviceAuth {
  const { certificates, policies, directory, scope } = options;
  const log = options.logger.child({ ctx: 'auth' });
  const warn = rateLimitedLog(log);
  const refused = new Counter({
    name: 'thingstead_auth_connect_refused_total',
    help: 'MQTT connections refused by authentication, by reason.',
    labelNames: ['reason'] as const,
    registers: [options.metrics],
  });
  const denied = new Counter({
    name: 'thingstead_authz_denied_total',
    help: 'Requests denied by policy, by action.',
    labelNames: ['action'] as const,
    registers: [options.metrics],
  });
  const resolvedBy = new WeakMap<Principal, ResolvedPrincipal>();
  /** Bumped on every policy change and principal refresh; per-connection state rebinds when it moves. */
  let generation = 0;
  policies.onChange(() => generation++);
  const arnPrefix = `arn:aws:iot:${scope.region}:${scope.accountId}:`;
  const certArn = (id: string) => `${arnPrefix}cert/${id}`;
  const clientPrefix = `${arnPrefix}client/`;
  const topicPrefix = `${arnPrefix}topic/`;
  const filterPrefix = `${arnPrefix}topicfilter/`;
  const groupArn = (name: string) => `${arnPrefix}thinggroup/${name}`;

  async function resolveWith(principal: Principal, clientId: string | undefined, cert?: CertificateFields) {
    if (principal.kind === 'anonymous') {
      const r: ResolvedPrincipal = { principal, targets: [ANONYMOUS_TARGET], things: [] };
      return r;
    }
    const arn = certArn(principal.id);
    const things = [...(await directory.thingsOfPrincipal(arn))].sort();
    const thingName = clientId !== undefined && things.includes(clientId) ? clientId : things[0];
    const targets = [arn];
    let thing: ResolvedPrincipal['thing'];
    if (thingName) {
      const [desc, groups] = await Promise.all([
        directory.describeThing(thingName),
        directory.groupsOfThing(thingName),
      ]);
      thing = { name: thingName, typeName: desc?.typeName, attributes: desc?.attributes };
      for (const g of groups) targets.push(groupArn(g));
    }
    let certificate = cert;
    const record = await certificates.describe(principal.id).catch(() => undefined);
    const caId = record?.caCertificateId ?? null;
    if (!certificate && record) certificate = certificateInfo(record.certificatePem);
    const r: ResolvedPrincipal = {
      principal: { ...principal, thingName: thing?.name },
      targets,
      things,
      thing,
      certificate,
      caId,
    };
    return r;
  }

  function contextFor(
    r: ResolvedPrincipal,
    clientId: string | undefined,
    info?: ConnectionInfo,
  ): AuthContext {
    return {
      clientId,
      sourceIp: info?.remoteAddress,
      secureTransport: info ? info.transport === 'tls' || info.transport === 'wss' : undefined,
      thing: r.thing,
      isAttached: clientId !== undefined && r.things.includes(clientId),
      certificate: r.certificate,
    };
  }

  // Hot path for dev-mode clients: recomputed only when the policy generation changes.
  let anonymousCache = { generation: -1, all: false };
  const anonymousAllowsAll = () => {
    if (anonymousCache.generation !== policies.generation) {
      anonymousCache = {
        generation: policies.generation,
        all: options.allowAnonymous && policies.policiesOf(ANONYMOUS_TARGET).length === 0,
      };
    }
    return anonymousCache.all;
  };

  /**
   * Per-connection decision state, kept on the broker's subject object under a private symbol (cheaper
   * than a WeakMap on the hot path) and rebuilt when `generation` moves. Slots: one decision cache per
   * action, keyed by topic / filter / client id.
   */
  interface SubjectState {
    readonly generation: number;
    /** 0: evaluate policies; 1: allow all; 2: deny all; 3: read-only access key. */
    readonly fixed: 0 | 1 | 2 | 3;
    readonly bound: BoundPolicies | null;
    readonly caches: Array<Map<string, boolean>>;
    readonly lastName: Array<string | null>;
    readonly lastResult: Uint8Array;
    /** Fast-path memo of the last allowed PUBLISH / delivery topic (the per-message checks). */
    pubName: string | null;
    recvName: string | null;
  }

  const deny = (action: string): false => {
    denied.inc({ action });
    return false;
  };

  function rebuild(subject: AuthzSubject): SubjectState {
    const p = subject.principal;
    const r = resolvedBy.get(p);
    let fixed: SubjectState['fixed'] = 0;
    let bound: BoundPolicies | null = null;
    if (p.kind === 'internal') fixed = 1;
    else if (!r) fixed = 2;
    else if (p.kind === 'accessKey') fixed = r.role === 'admin' ? 1 : 3;
    else if (p.kind === 'anonymous' && anonymousAllowsAll()) fixed = 1;
    else bound = bindPolicies(policies.policiesFor(r.targets), contextFor(r, subject.clientId, subject.info));
    const state: SubjectState = {
      generation,
      fixed,
      bound,
      caches: [new Map(), new Map(), new Map(), new Map(), new Map()],
      lastName: [null, null, null, null, null],
      lastResult: new Uint8Array(5),
      pubName: null,
      recvName: null,
    };
    (subject as unknown as Record<symbol, SubjectState>)[STATE] = state;
    return state;
  }

  /** Hot path: no allocation and no ARN building on a cache hit. */
  function check(subject: AuthzSubject, slot: number, action: string, prefix: string, name: string): boolean {
    let st = (subject as unknown as Record<symbol, SubjectState | undefined>)[STATE];
    if (st === undefined || st.generation !== generation) st = rebuild(subject);
    let ok: boolean;
    if (st.fixed !== 0) ok = st.fixed === 1 || (st.fixed === 3 && READ_ONLY_ACTIONS.has(action));
    else if (st.lastName[slot] === name) ok = st.lastResult[slot] === 1;
    else {
      const cache = st.caches[slot]!;
      let hit = cache.get(name);
      if (hit === undefined) {
        hit = st.bound!.allowed(action, prefix + name);
        if (cache.size >= 1024) cache.clear();
        cache.set(name, hit);
      }
      ok = hit;
      st.lastName[slot] = name;
      st.lastResult[slot] = ok ? 1 : 0;
    }
    if (!ok) return deny(action);
    if (slot === 1) st.pubName = name;
    else if (slot === 3) st.recvName = name;
    return true;
  }

  function refuse(reason: string, message: string, details: object, reasonCode = 0x87) {
    refused.inc({ reason });
    warn({ ...details, reason }, `connection refused: ${message}`);
    return { ok: false as const, reasonCode, reason: message };
  }

  async function authenticateCertificate(cert: X509Certificate, clientId: string, remote: string) {
    const result = await certificates.check(cert);
    if (!result.ok) {
      return refuse(result.reason, `client certificate ${result.reason.replace('_', ' ')}`, {
        certificateId: result.certificateId,
        clientId,
        remote,
      });
    }
    const principal: Principal = { kind: 'certificate', id: result.record.certificateId };
    const r = await resolveWith(principal, clientId, certificateInfo(result.record.certificatePem));
    resolvedBy.set(r.principal, r);
    return { ok: true as const, principal: r.principal };
  }

  async function authenticateAccessKey(
    accessKeyId: string,
    secret: Buffer | string,
    how: 'password' | 'sigv4',
    remote: string,
  ) {
    const key = await options.accessKeys?.lookup(accessKeyId);
    if (!key) return refuse('unknown_access_key', 'unknown access key', { remote }, 0x86);
    if (how === 'password') {
      const given = Buffer.isBuffer(secret) ? secret : Buffer.from(secret);
      const expected = Buffer.from(key.secretAccessKey);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return refuse('bad_password', 'bad user name or password', { remote, accessKeyId }, 0x86);
      }
    }
    const principal: Principal = { kind: 'accessKey', id: accessKeyId };
    resolvedBy.set(principal, { principal, targets: [], things: [], role: key.role });
    return { ok: true as const, principal };
  }

  const hooks: DeviceAuth = {
    async authenticate(req) {
      const { info } = req;
      if (info.clientCertificate)
        return authenticateCertificate(info.clientCertificate, req.clientId, info.remoteAddress);
      // The TLS port is mutual TLS only, as AWS's 8883 (reference §8.0), even in anonymous dev mode:
      // dev mode opens the plain and WebSocket listeners to loopback clients, never the certificate port.
      if (info.transport === 'tls') {
        return refuse('no_credentials', 'no client certificate: present a registered, ACTIVE certificate', {
          remote: info.remoteAddress,
          transport: info.transport,
        });
      }
      const url = info.upgradeRequest?.url;
      if (url && /[?&]X-Amz-Signature=/i.test(url)) {
        const q = url.indexOf('?');
        const params = new URLSearchParams(url.slice(q + 1));
        const expires = Number(params.get('X-Amz-Expires') ?? '86400');
        const signedAt = Date.parse(
          (params.get('X-Amz-Date') ?? '').replace(
            /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
            '$1-$2-$3T$4:$5:$6Z',
          ),
        );
        if (
          !Number.isFinite(signedAt) ||
          !Number.isFinite(expires) ||
          Date.now() > signedAt + expires * 1000
        ) {
          return refuse(
            'expired_signature',
            'SigV4: the presigned URL has expired',
            { remote: info.remoteAddress },
            0x86,
          );
        }
        try {
          const verified = await verifySigV4(
            {
              method: 'GET',
              path: url.slice(0, q),
              query: url.slice(q + 1),
              headers: info.upgradeRequest.headers,
              body: Buffer.alloc(0),
            },
            async (id) => options.accessKeys?.lookup(id),
            // A URL presigned for another region is refused like an API request (reference §7.2, §7.3).
            { region: scope.region },
          );
          return authenticateAccessKey(verified.accessKeyId, '', 'sigv4', info.remoteAddress);
        } catch (err) {
          return refuse(
            'bad_signature',
            `SigV4: ${(err as Error).message}`,
            { remote: info.remoteAddress },
            0x86,
          );
        }
      }
      if (req.username !== undefined && req.password !== undefined && options.accessKeys) {
        // Device SDKs append `?SDK=...` metrics to the user name (reference §7.4).
        const user = req.username.split('?')[0]!;
        return authenticateAccessKey(user, req.password, 'password', info.remoteAddress);
      }
      if (options.allowAnonymous && isLoopback(info.remoteAddress)) {
        const principal: Principal = { kind: 'anonymous', id: 'anonymous' };
        resolvedBy.set(principal, { principal, targets: [ANONYMOUS_TARGET], things: [] });
        return { ok: true, principal };
      }
      return refuse('no_credentials', 'not authorized: present a client certificate or credentials', {
        remote: info.remoteAddress,
        transport: info.transport,
      });
    },
    authorizeConnection: (s) => check(s, 0, 'iot:Connect', clientPrefix, s.clientId),
    // Per-message checks: a fast path for the topic allowed last time (a fan-out delivers one topic
    // string to every subscriber; a device publishes to the same few topics), else the full check.
    authorizePublish: (s, topic) => {
      const st = (s as unknown as Record<symbol, SubjectState | undefined>)[STATE];
      if (st !== undefined && st.pubName === topic && st.generation === generation) return true;
      return check(s, 1, 'iot:Publish', topicPrefix, topic);
    },
    authorizeSubscribe: (s, filter) => check(s, 2, 'iot:Subscribe', filterPrefix, filter),
    authorizeReceive: (s, topic) => {
      const st = (s as unknown as Record<symbol, SubjectState | undefined>)[STATE];
      if (st !== undefined && st.recvName === topic && st.generation === generation) return true;
      return check(s, 3, 'iot:Receive', topicPrefix, topic);
    },
    authorizeRetain: (s, topic) => check(s, 4, 'iot:RetainPublish', topicPrefix, topic),

    async resolve(principalArn, clientId) {
      if (principalArn === ANONYMOUS_TARGET)
        return resolveWith({ kind: 'anonymous', id: 'anonymous' }, clientId);
      const id = certificates.idFromArn(principalArn);
      if (!id) throw new TypeError(`not a certificate ARN: ${principalArn}`);
      return resolveWith({ kind: 'certificate', id }, clientId);
    },
    contextFor,

    async refresh(clients, scope) {
      const concerned = (c: { clientId: string; principal: Principal }, r: ResolvedPrincipal) =>
        !scope ||
        (scope.principal !== undefined && certArn(c.principal.id) === scope.principal) ||
        (scope.thingName !== undefined &&
          (r.things.includes(scope.thingName) || c.clientId === scope.thingName)) ||
        (scope.thingGroupName !== undefined && r.targets.includes(groupArn(scope.thingGroupName)));
      for (const c of clients) {
        const old = resolvedBy.get(c.principal);
        if (!old || c.principal.kind !== 'certificate' || !concerned(c, old)) continue;
        const fresh = await resolveWith(c.principal, c.clientId, old.certificate);
        resolvedBy.set(c.principal, { ...fresh, principal: c.principal });
      }
      generation++;
    },

    caIdOf: (principal) => resolvedBy.get(principal)?.caId,

    anonymousAllowsAll,

    authorizeAction(s, action, resourceArn) {
      let st = (s as unknown as Record<symbol, SubjectState | undefined>)[STATE];
      if (st === undefined || st.generation !== generation) st = rebuild(s);
      const ok =
        st.fixed !== 0
          ? st.fixed === 1 || (st.fixed === 3 && READ_ONLY_ACTIONS.has(action))
          : st.bound!.allowed(action, resourceArn);
      return ok || deny(action);
    },
  };
  return hooks;
}
