import type { X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { RC } from './reason-codes.js';

/**
 * What the broker knows about a connection before CONNECT is read. Filled by the transport layer.
 */
export interface ConnectionInfo {
  readonly transport: 'tcp' | 'tls' | 'ws' | 'wss';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /** The client certificate presented on a mutual-TLS connection (already chain-verified by TLS). */
  readonly clientCertificate?: X509Certificate | undefined;
  /** For WebSocket connections: the HTTP upgrade request (SigV4 presigned URL query, headers). */
  readonly upgradeRequest?: { readonly url: string; readonly headers: IncomingHttpHeaders } | undefined;
}

export interface ConnectRequest {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly password: Buffer | undefined;
  readonly protocolVersion: 3 | 4 | 5;
  readonly info: ConnectionInfo;
}

/**
 * Who a connection acts as once authenticated. Policy evaluation reads it; the broker only carries it.
 * `kind: 'anonymous'` is the dev-mode loopback client.
 */
export interface Principal {
  readonly kind: 'anonymous' | 'certificate' | 'accessKey' | 'internal';
  /** Stable id: certificate id, access key id, or 'anonymous'. */
  readonly id: string;
  /** Thing attached to the principal, if any (iot:Connection.Thing.ThingName). */
  readonly thingName?: string | undefined;
}

export type ConnectDecision =
  | { readonly ok: true; readonly principal: Principal }
  /** MQTT 5 CONNACK reason (0x86 bad user name or password, 0x87 not authorized, ...). */
  | { readonly ok: false; readonly reasonCode: number; readonly reason: string };

/** Per-connection authorization context handed back to the hooks on every decision. */
export interface AuthzSubject {
  readonly clientId: string;
  readonly principal: Principal;
  readonly info: ConnectionInfo;
}

/**
 * Authentication and authorization hooks, filled by the identity and policy contexts.
 *
 * Contract: `authenticate` may be async (it runs once per CONNECT). The `authorize*` calls are on the hot
 * path: synchronous, expected to hit a per-connection decision cache. A hook that throws denies.
 * When authorization inputs change (policy, attachment, certificate status), the owner calls
 * `Broker.reauthorize()` which re-runs `authorizeConnection` for live connections and drops those refused.
 */
export interface AuthHooks {
  authenticate(request: ConnectRequest): ConnectDecision | Promise<ConnectDecision>;
  /** iot:Connect for an already authenticated subject; re-checked on reauthorize(). */
  authorizeConnection(subject: AuthzSubject): boolean;
  authorizePublish(subject: AuthzSubject, topic: string): boolean;
  /** Checked per topic filter string; a refusal becomes SUBACK failure 0x87 / 0x80. */
  authorizeSubscribe(subject: AuthzSubject, filter: string): boolean;
  /** Checked per delivered message; a refusal silently skips the delivery (counted). */
  authorizeReceive(subject: AuthzSubject, topic: string): boolean;
  authorizeRetain(subject: AuthzSubject, topic: string): boolean;
  /**
   * MQTT 5 enhanced authentication (CONNECT Authentication Method + AUTH exchange [MQTT-4.12]). Optional:
   * without it, a CONNECT naming an authentication method is refused with 0x8C Bad authentication method.
   */
  enhancedAuth?: EnhancedAuth | undefined;
}

/** One step of an enhanced authentication exchange. */
export type EnhancedAuthResult =
  /** Send AUTH 0x18 (Continue authentication) with this data and wait for the client's AUTH. */
  | { readonly continue: true; readonly data?: Buffer | undefined }
  /** Finish: CONNACK with the decision (and this Authentication Data on success). */
  | { readonly continue: false; readonly decision: ConnectDecision; readonly data?: Buffer | undefined };

export interface EnhancedAuth {
  supports(method: string): boolean;
  /**
   * `step` counts from 0 (the CONNECT's data) and rises with each client AUTH packet. On re-authentication
   * (AUTH 0x19 after CONNACK [MQTT-4.12.1]) it counts from 0 again (the AUTH 0x19's data) with
   * `reauthenticate: true` and no password; a final decision ends it: AUTH 0x00 Success, or a DISCONNECT
   * with the refusal's reason code.
   */
  step(
    request: ConnectRequest & {
      readonly method: string;
      readonly data: Buffer | undefined;
      readonly step: number;
      readonly reauthenticate?: boolean | undefined;
    },
  ): EnhancedAuthResult | Promise<EnhancedAuthResult>;
}

/**
 * The default hooks until identity and policy are configured: loopback clients get in when
 * `allowAnonymous` is on; everyone else is refused with 0x87 (not authorized).
 */
export function anonymousLoopbackHooks(allowAnonymous: boolean): AuthHooks {
  const isLoopback = (addr: string) =>
    addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1' || addr.startsWith('127.');
  return {
    authenticate(req) {
      if (allowAnonymous && isLoopback(req.info.remoteAddress)) {
        return { ok: true, principal: { kind: 'anonymous', id: 'anonymous' } };
      }
      return {
        ok: false,
        reasonCode: RC.NOT_AUTHORIZED,
        reason: allowAnonymous
          ? 'anonymous access is allowed from loopback only'
          : 'not authorized: present a client certificate or credentials (THINGSTEAD_ALLOW_ANONYMOUS is off)',
      };
    },
    authorizeConnection: () => true,
    authorizePublish: () => true,
    authorizeSubscribe: () => true,
    authorizeReceive: () => true,
    authorizeRetain: () => true,
  };
}

/**
 * Usage metering and quotas, filled by the metering context (src/metering). The broker calls it only
 * through these two types, and not at all when `BrokerOptions.meter` is absent (metering.enabled=false):
 * then the cost on the hot path is one `conn.usage !== null` branch per packet.
 *
 * Hot-path contract: every method is synchronous, allocation-free and never throws (the meter catches its
 * own failures); the broker passes byte counts it already has.
 */
export interface UsageMeter {
  /**
   * A CONNECT passed authentication: may this thing (and its billing group) connect now? Null: yes; else
   * the reason string for CONNACK 0x9F Connection rate exceeded (the refusal is counted by the meter).
   */
  admitConnect(subject: AuthzSubject): string | null;
  /**
   * The connection is up (CONNACK sent): its per-connection counters. `connectBytes` is the CONNECT's
   * metered size (will topic + will payload + v5 properties).
   */
  open(subject: AuthzSubject, connectBytes: number): ConnectionUsage;
}

/** Per-connection usage counters and quota gates (one object per live connection). */
export interface ConnectionUsage {
  /** Wire bytes read from / written to the client (every packet). */
  bytesIn: number;
  bytesOut: number;
  /**
   * A PUBLISH from the client that passed validation and authorization. `bytes`: topic + payload + v5
   * properties. Returns 0 when admitted (and counts it), else the MQTT 5 reason code of the refusal:
   * 0x97 Quota exceeded (refuse this PUBLISH) or 0x96 Message rate too high (disconnect); the reason
   * string is then in `refusal`.
   */
  publishIn(bytes: number, retain: boolean, topic: string): number;
  /** A PUBLISH sent to the client (each delivery, resends included). */
  publishOut(bytes: number): void;
  /** A metered control packet from the client: SUBSCRIBE (its filters' bytes) or a PUBACK it sent. */
  controlIn(bytes: number): void;
  /** May the session hold `total` subscriptions? Null: yes; else the SUBACK 0x97 reason string. */
  admitSubscriptions(total: number): string | null;
  /** Why the last refusal happened (valid right after a refusing call). */
  readonly refusal: string;
  /** The connection ended: account its last minutes. Called once. */
  close(): void;
}
