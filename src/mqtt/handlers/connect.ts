/**
 * CONNECT [MQTT-3.1] and the enhanced-authentication AUTH exchange [MQTT-4.12]: validation, client id
 * assignment, authentication and iot:Connect, session takeover, clean start / session expiry, keep-alive
 * clamping, and the CONNACK.
 */
import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { IAuthPacket, IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { Connection, CloseReason } from '../connection.js';
import type { ConnectDecision, ConnectRequest, EnhancedAuthResult } from '../hooks.js';
import { Session } from '../session.js';
import { authorizeClientPublish, safe } from '../authorize.js';
import { resume } from '../delivery.js';
import { cancelWill } from '../will.js';
import { checkTopicName } from '../topics.js';
import { RC, reasonName } from '../reason-codes.js';

/** Client-to-server Topic Alias Maximum we accept [MQTT-3.2.2-17]. */
export const TOPIC_ALIAS_MAX = 64;
/** Cap on server-to-client aliases we keep per connection (memory bound). */
const OUTBOUND_ALIAS_CAP = 64;

/** MQTT 5 CONNACK reason codes as MQTT 3.1.1 return codes [MQTT-3.1.1 §3.2.2.3, table 3.1]. */
function v3ReturnCode(reasonCode: number): number {
  switch (reasonCode) {
    case RC.UNSUPPORTED_PROTOCOL_VERSION:
      return 1;
    case RC.CLIENT_IDENTIFIER_NOT_VALID:
      return 2;
    // 3.1.1 has no rate code: 3 Server unavailable is the one that says "try again later".
    case RC.SERVER_UNAVAILABLE:
    case RC.SERVER_BUSY:
    case RC.CONNECTION_RATE_EXCEEDED:
      return 3;
    case RC.BAD_USER_NAME_OR_PASSWORD:
      return 4;
    default:
      return 5;
  }
}

/** Refuse the connection with a CONNACK carrying the reason, then close [MQTT-3.2.2-7]. */
export function refuse(
  conn: Connection,
  reasonCode: number,
  reason: string,
  close: CloseReason = 'auth_error',
) {
  const packet: IConnackPacket =
    conn.version === 5
      ? {
          cmd: 'connack',
          sessionPresent: false,
          reasonCode,
          properties: conn.problemInfo ? { reasonString: reason } : {},
        }
      : { cmd: 'connack', sessionPresent: false, returnCode: v3ReturnCode(reasonCode) };
  conn.core.metrics.connectsRefused.inc({ reason: reasonName(reasonCode) });
  conn.core.connLog.refused(conn, reasonCode, reason);
  conn.sendPacket(packet);
  conn.close(close);
}

/** A CONNECT's metered size: will topic + will payload (AWS meters at least one 5 KB unit anyway). */
function connectBytes(p: IConnectPacket): number {
  const w = p.will;
  if (!w) return 0;
  const payload = w.payload as Buffer | string | undefined;
  return Buffer.byteLength(w.topic) + (payload === undefined ? 0 : Buffer.byteLength(payload));
}

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as Promise<T>)?.then === 'function';

export function handleConnect(conn: Connection, p: IConnectPacket): void {
  // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
  if (conn.state !== 'new') return conn.protocolError(RC.PROTOCOL_ERROR, 'second CONNECT');
  const core = conn.core;
  const v = p.protocolVersion ?? 4;
  conn.setProtocolVersion(v);
  const v5 = v === 5;
  const props = p.properties ?? {};
  if (v5) conn.problemInfo = props.requestProblemInformation !== false;
  if (v5 && (props.receiveMaximum === 0 || props.maximumPacketSize === 0)) {
    // [MQTT-5.0 §3.1.2.11.3, §3.1.2.11.4] Receive Maximum / Maximum Packet Size of 0 is a protocol error.
    return refuse(
      conn,
      RC.PROTOCOL_ERROR,
      'receive maximum and maximum packet size must be > 0',
      'protocol_error',
    );
  }

  let clientId = p.clientId ?? '';
  let assigned: string | undefined;
  if (clientId === '') {
    // [MQTT-3.1.3-7/8] 3.1.1: an empty client id needs clean session; v5: the server assigns one
    // and returns it as Assigned Client Identifier [MQTT-3.2.2-16].
    if (!v5 && !p.clean)
      return refuse(
        conn,
        RC.CLIENT_IDENTIFIER_NOT_VALID,
        'an empty client id needs clean session',
        'protocol_error',
      );
    clientId = `ts-${randomUUID()}`;
    if (v5) assigned = clientId;
  }
  conn.assignedClientId = assigned;
  conn.clientId = clientId;
  // AWS §11: client ids are at most 128 bytes (limits.maxClientIdBytes). Only the client's own id is held
  // to it, not one the server assigns (v5 Assigned Client Identifier, or 3.1.1's empty id + clean session).
  const maxId = core.config.limits.maxClientIdBytes;
  const given = p.clientId ?? '';
  if (given.length * 3 > maxId && Buffer.byteLength(given) > maxId) {
    // [MQTT-3.1.3-9] / MQTT 5 §3.1.3.1: a server may refuse a client id; 0x85 (3.1.1: return code 2).
    return refuse(
      conn,
      RC.CLIENT_IDENTIFIER_NOT_VALID,
      `client id longer than ${maxId} bytes (limits.maxClientIdBytes)`,
      'protocol_error',
    );
  }
  // AWS §11: CONNECTs per client id are rate limited (checked before authentication, so a client in a
  // reconnect loop costs no hook calls). A server-assigned id is new by construction.
  if (assigned === undefined && p.clientId && !core.connectLimiter.admit(clientId)) {
    return refuse(
      conn,
      RC.CONNECTION_RATE_EXCEEDED,
      `too many CONNECTs for this client id (limits.connectsPerClientIdPerSecond ${core.config.limits.connectsPerClientIdPerSecond})`,
      'connect_throttled',
    );
  }

  if (p.will) {
    const w = p.will;
    const payload = typeof w.payload === 'string' ? Buffer.from(w.payload) : w.payload;
    if (checkTopicName(w.topic, core.topicLimits) !== null) {
      return refuse(conn, RC.TOPIC_NAME_INVALID, 'invalid will topic', 'protocol_error');
    }
    if (w.properties?.payloadFormatIndicator && !isUtf8(payload)) {
      // [MQTT-3.1.3-11] will payload declared UTF-8 must be UTF-8.
      return refuse(conn, RC.PAYLOAD_FORMAT_INVALID, 'will payload is not valid UTF-8', 'protocol_error');
    }
    const { willDelayInterval, ...properties } = w.properties ?? {};
    conn.will = {
      topic: w.topic,
      payload,
      qos: w.qos ?? 0,
      retain: w.retain ?? false,
      properties: v5 && Object.keys(properties).length ? properties : undefined,
      delay: v5 ? (willDelayInterval ?? 0) : 0,
    };
  }

  const request: ConnectRequest = {
    clientId,
    username: p.username,
    password: p.password,
    protocolVersion: v,
    info: conn.info,
  };
  conn.state = 'authenticating';
  conn.pendingConnect = p;
  conn.authUsername = p.username;

  if (v5 && props.authenticationMethod) {
    const ea = core.hooks.enhancedAuth;
    if (!ea || !safe(() => ea.supports(props.authenticationMethod!))) {
      // [MQTT-5.0 §4.12] no supported method: 0x8C Bad authentication method.
      return refuse(
        conn,
        RC.BAD_AUTHENTICATION_METHOD,
        `authentication method ${props.authenticationMethod} is not supported`,
      );
    }
    conn.authMethod = props.authenticationMethod;
    return authStep(conn, request, props.authenticationData, assigned);
  }

  let result: ConnectDecision | Promise<ConnectDecision>;
  try {
    result = core.hooks.authenticate(request);
  } catch (err) {
    core.log.warn({ err }, 'authenticate hook threw');
    return refuse(conn, RC.UNSPECIFIED_ERROR, 'authentication failed');
  }
  if (isPromise(result)) {
    conn.pause();
    result.then(
      (d) => finishConnect(conn, d, assigned, undefined, true),
      (err: unknown) => {
        core.log.warn({ err }, 'authenticate hook failed');
        if (conn.state !== 'closed') refuse(conn, RC.UNSPECIFIED_ERROR, 'authentication failed');
      },
    );
  } else finishConnect(conn, result, assigned, undefined, false);
}

function authStep(
  conn: Connection,
  request: ConnectRequest,
  data: Buffer | undefined,
  assigned: string | undefined,
): void {
  const ea = conn.core.hooks.enhancedAuth!;
  const method = conn.authMethod!;
  let r: EnhancedAuthResult | Promise<EnhancedAuthResult>;
  try {
    r = ea.step({ ...request, method, data, step: conn.authStep++ });
  } catch {
    return refuse(conn, RC.UNSPECIFIED_ERROR, 'authentication failed');
  }
  const next = (res: EnhancedAuthResult, async: boolean) => {
    if (conn.state === 'closed') return;
    if (res.continue) {
      conn.state = 'authwait';
      const auth: IAuthPacket = {
        cmd: 'auth',
        reasonCode: RC.CONTINUE_AUTHENTICATION,
        properties: { authenticationMethod: method },
      };
      if (res.data) auth.properties!.authenticationData = res.data;
      conn.sendPacket(auth);
      // Synchronous steps return into the read loop, which goes on; async ones restart it.
      if (async) {
        conn.resume();
        conn.processInput();
      }
      return;
    }
    finishConnect(conn, res.decision, assigned, res.data, async);
  };
  if (isPromise(r)) {
    conn.pause();
    r.then(
      (res) => next(res, true),
      () => conn.state !== 'closed' && refuse(conn, RC.UNSPECIFIED_ERROR, 'authentication failed'),
    );
  } else next(r, false);
}

/** A client AUTH packet during the CONNECT exchange [MQTT-4.12.0-2..7]. */
export function handleAuth(conn: Connection, p: IAuthPacket): void {
  if (conn.state === 'authwait') {
    if (
      p.reasonCode !== RC.CONTINUE_AUTHENTICATION ||
      p.properties?.authenticationMethod !== conn.authMethod
    ) {
      return refuse(conn, RC.PROTOCOL_ERROR, 'unexpected AUTH packet', 'protocol_error');
    }
    conn.state = 'authenticating';
    const c = conn.pendingConnect!;
    const request: ConnectRequest = {
      clientId: conn.clientId,
      username: c.username,
      password: c.password,
      protocolVersion: conn.version,
      info: conn.info,
    };
    return authStep(conn, request, p.properties?.authenticationData, conn.assignedClientId);
  }
  if (conn.state === 'connected') return reauthenticate(conn, p);
  conn.protocolError(RC.PROTOCOL_ERROR, 'AUTH is only accepted during enhanced authentication');
}

/**
 * Re-authentication [MQTT-4.12.1]: after CONNACK, a client that connected with an Authentication Method
 * sends AUTH 0x19 (Re-authenticate) with the same method, then the exchange goes on with AUTH 0x18 both
 * ways through the same `enhancedAuth.step` hook (step counting from 0 again, `reauthenticate: true`)
 * until the server answers AUTH 0x00 Success. Other packets flow meanwhile. A client without a method at
 * CONNECT, another method, or an AUTH out of turn is a Protocol Error [MQTT-4.12.1-1]; a failed
 * re-authentication disconnects with the hook's reason code [MQTT-4.12.1-2]. On success the connection
 * acts as the principal the hook returned (iot:Connect is checked again).
 */
function reauthenticate(conn: Connection, p: IAuthPacket): void {
  const method = p.properties?.authenticationMethod;
  const ea = conn.core.hooks.enhancedAuth;
  if (conn.authMethod === null || ea === undefined)
    return conn.protocolError(RC.PROTOCOL_ERROR, 'AUTH without an authentication method at CONNECT');
  if (method !== conn.authMethod)
    return conn.protocolError(RC.PROTOCOL_ERROR, 'AUTH must use the authentication method of the CONNECT');
  const code = p.reasonCode ?? RC.SUCCESS;
  if (code === RC.RE_AUTHENTICATE) {
    // A new AUTH 0x19 while waiting for the client's answer restarts the exchange.
    if (conn.reauthStep >= 0)
      return conn.protocolError(RC.PROTOCOL_ERROR, 're-authentication already in progress');
    conn.reauthStep = 0;
  } else if (code !== RC.CONTINUE_AUTHENTICATION || conn.reauthStep !== REAUTH_WAITING) {
    return conn.protocolError(RC.PROTOCOL_ERROR, 'unexpected AUTH packet');
  } else conn.reauthStep = conn.reauthNext;
  const seq = ++conn.reauthSeq;
  const step = conn.reauthStep;
  const running = () => conn.state === 'connected' && conn.reauthSeq === seq;
  let r: EnhancedAuthResult | Promise<EnhancedAuthResult>;
  try {
    r = ea.step({
      clientId: conn.clientId,
      username: conn.authUsername,
      password: undefined,
      protocolVersion: conn.version,
      info: conn.info,
      method,
      data: p.properties?.authenticationData,
      step,
      reauthenticate: true,
    });
  } catch {
    return reauthFailed(conn, RC.UNSPECIFIED_ERROR, 're-authentication failed');
  }
  const next = (res: EnhancedAuthResult) => {
    if (!running()) return;
    if (res.continue) {
      conn.reauthNext = step + 1;
      conn.reauthStep = REAUTH_WAITING;
      const auth: IAuthPacket = {
        cmd: 'auth',
        reasonCode: RC.CONTINUE_AUTHENTICATION,
        properties: { authenticationMethod: method },
      };
      if (res.data) auth.properties!.authenticationData = res.data;
      return conn.sendPacket(auth);
    }
    conn.reauthStep = -1;
    const d = res.decision;
    if (!d.ok) return reauthFailed(conn, d.reasonCode, d.reason);
    const subject = { clientId: conn.clientId, principal: d.principal, info: conn.info };
    if (!safe(() => conn.core.hooks.authorizeConnection(subject)))
      return reauthFailed(conn, RC.NOT_AUTHORIZED, 'not authorized to connect with this client id');
    conn.principal = d.principal;
    conn.subject = subject;
    conn.publisher = { clientId: conn.clientId, principal: d.principal };
    if (conn.session) conn.session.subject = subject;
    const ok: IAuthPacket = {
      cmd: 'auth',
      reasonCode: RC.SUCCESS,
      properties: { authenticationMethod: method },
    };
    if (res.data) ok.properties!.authenticationData = res.data;
    conn.sendPacket(ok);
  };
  if (isPromise(r))
    r.then(next, () => running() && reauthFailed(conn, RC.UNSPECIFIED_ERROR, 're-authentication failed'));
  else next(r);
}

/** Waiting for the client's next AUTH 0x18 of a re-authentication. */
const REAUTH_WAITING = -2;

function reauthFailed(conn: Connection, code: number, reason: string): void {
  conn.reauthStep = -1;
  conn.core.metrics.protocolErrors.inc({ reason: 'reauthentication_failed' });
  conn.close('auth_error', code, reason);
}

function finishConnect(
  conn: Connection,
  decision: ConnectDecision,
  assigned: string | undefined,
  authData: Buffer | undefined,
  async: boolean,
): void {
  if (conn.state === 'closed') return;
  const core = conn.core;
  const limits = core.config.limits;
  const p = conn.pendingConnect!;
  conn.pendingConnect = null;
  if (!decision.ok) return refuse(conn, decision.reasonCode, decision.reason);
  const subject = { clientId: conn.clientId, principal: decision.principal, info: conn.info };
  if (!safe(() => core.hooks.authorizeConnection(subject))) {
    return refuse(conn, RC.NOT_AUTHORIZED, 'not authorized to connect with this client id', 'not_authorized');
  }
  // Connect quotas of the thing and its billing group (src/metering): CONNACK 0x9F with the reason.
  const meter = core.meter;
  const throttled = meter !== null ? meter.admitConnect(subject) : null;
  if (throttled !== null) return refuse(conn, RC.CONNECTION_RATE_EXCEEDED, throttled, 'connect_throttled');
  const cluster = core.cluster;
  if (cluster === null) return acceptConnect(conn, p, decision, subject, assigned, authData, async);
  // Cluster mode: the client id's session comes to this node first (the node holding it closes the old
  // connection with 0x8E and writes the session; src/cluster). The read loop waits meanwhile.
  const cleanStart = p.clean !== false;
  const persistent =
    conn.version === 5
      ? (p.properties?.sessionExpiryInterval ?? 0) > 0
      : !cleanStart && limits.sessionExpiryMax > 0;
  const will =
    conn.will !== null && authorizeClientPublish(core.hooks, subject, conn.will.topic, conn.will.retain)
      ? conn.will
      : null;
  conn.pause();
  cluster.acquire({ clientId: conn.clientId, persistent, cleanStart, will, subject }).then(
    () => {
      if (conn.state === 'closed') return;
      acceptConnect(conn, p, decision, subject, assigned, authData, true);
    },
    (err: unknown) => {
      core.log.warn({ err, clientId: conn.clientId }, 'cluster session take-over failed');
      if (conn.state !== 'closed')
        refuse(conn, RC.SERVER_UNAVAILABLE, 'the session could not be taken over from another node; retry');
    },
  );
}

/** The CONNECT is authenticated and authorized (and in a cluster, its session is on this node): accept it. */
function acceptConnect(
  conn: Connection,
  p: IConnectPacket,
  decision: ConnectDecision & { ok: true },
  subject: NonNullable<Connection['subject']>,
  assigned: string | undefined,
  authData: Buffer | undefined,
  async: boolean,
): void {
  const core = conn.core;
  const limits = core.config.limits;
  const meter = core.meter;
  const v5 = conn.version === 5;
  const props = p.properties ?? {};
  const clientId = conn.clientId;

  // [MQTT-3.1.4-3] session takeover: the existing connection is closed (v5 DISCONNECT 0x8E).
  const existing = core.sessions.get(clientId);
  if (existing?.conn) existing.conn.close('duplicate_clientid', RC.SESSION_TAKEN_OVER, 'session taken over');

  const cleanStart = p.clean !== false;
  const requested = v5 ? (props.sessionExpiryInterval ?? 0) : cleanStart ? 0 : limits.sessionExpiryMax;
  const expiry = Math.min(requested, limits.sessionExpiryMax);
  let s = core.sessions.get(clientId);
  // [MQTT-3.1.2-4] Clean Start discards any existing session.
  if (s && cleanStart) {
    core.endSession(s);
    s = undefined;
  }
  const sessionPresent = s !== undefined;
  if (s) {
    cancelWill(core, s);
    if (s.expiryTimer) clearTimeout(s.expiryTimer);
    s.expiryTimer = null;
    s.expiryInterval = expiry;
    s.protocolVersion = conn.version;
  } else {
    s = new Session(clientId, conn.version, expiry);
    core.sessions.set(clientId, s);
  }
  s.conn = conn;
  s.subject = subject;
  s.disconnectedAt = null;
  conn.session = s;
  conn.subject = subject;
  conn.principal = decision.principal;
  conn.publisher = { clientId, principal: decision.principal };
  conn.state = 'connected';
  conn.connectedAt = Date.now();
  conn.newSessionIdentifier();

  // Keep alive: clamp to [keepAliveMin, keepAliveMax]; v5 clients are told via Server Keep Alive.
  const ka = p.keepalive ?? 0;
  const effective =
    ka === 0
      ? limits.keepAliveMin > 0
        ? limits.keepAliveMax
        : 0
      : Math.min(Math.max(ka, limits.keepAliveMin), limits.keepAliveMax);
  conn.keepAlive = effective;

  const connack: IConnackPacket = { cmd: 'connack', sessionPresent };
  if (v5) {
    conn.sendWindow = Math.min(props.receiveMaximum ?? 65535, limits.maxInflight);
    conn.maxPacketOut = Math.min(props.maximumPacketSize ?? Infinity, limits.maxPacketBytes);
    conn.aliasMaxOut = Math.min(props.topicAliasMaximum ?? 0, OUTBOUND_ALIAS_CAP);
    conn.connectExpiryZero = requested === 0;
    connack.reasonCode = RC.SUCCESS;
    const cp: NonNullable<IConnackPacket['properties']> = {
      receiveMaximum: limits.maxInflight,
      maximumPacketSize: limits.maxPacketBytes,
      topicAliasMaximum: TOPIC_ALIAS_MAX,
    };
    if (assigned) cp.assignedClientIdentifier = assigned;
    if (effective !== ka) cp.serverKeepAlive = effective;
    if (expiry !== requested) cp.sessionExpiryInterval = expiry;
    if (conn.authMethod) {
      cp.authenticationMethod = conn.authMethod;
      if (authData) cp.authenticationData = authData;
    }
    connack.properties = cp;
  } else connack.returnCode = 0;
  conn.sendPacket(connack);
  // Metering from CONNACK on; AWS meters the CONNECT by its will topic, will payload and properties.
  if (meter !== null) conn.usage = meter.open(subject, connectBytes(p));
  core.connLog.connected(conn);

  if (s.persistent) {
    s.stored = true;
    core.persist({
      op: 'session',
      clientId,
      protocolVersion: conn.version,
      expiryInterval: expiry,
      disconnectedAt: null,
    });
    core.metrics.sessionsPersisted.inc();
  }
  core.lifecycle.connected({
    clientId,
    sessionIdentifier: conn.sessionIdentifier,
    principalId: decision.principal.id,
    ipAddress: conn.info.remoteAddress,
  });
  conn.startKeepAlive();
  if (sessionPresent) resume(core, s, conn);
  if (async) {
    conn.resume();
    conn.processInput();
  }
}
