/**
 * Will messages [MQTT-3.1.2-8..18, MQTT-3.1.3-9]: published when a connection ends without DISCONNECT
 * 0x00 (handlers clear the will on a normal DISCONNECT), after the v5 Will Delay Interval or when the
 * session ends, whichever is first; cancelled when the client reconnects to the session in time.
 *
 * Durability: a delayed will (which only a persistent session can have: the delay is capped by the session
 * expiry) is written to the store while it waits, and deleted when it fires or is cancelled. On graceful
 * shutdown a pending will is kept, not published; after a restart it fires at its time, or at once if that
 * passed while the server was down (or its session expired meanwhile), unless the client resumes the
 * session first. It is authorized when it fires, with the subject of the connection that set it; a will
 * restored after a restart cannot be (the auth hooks know only subjects they authenticated in this process),
 * so it is written only if that check passes when its connection ends, and that decision stands for it.
 */
import type { Connection } from './connection.js';
import type { Core } from './core.js';
import { authorizeClientPublish } from './authorize.js';
import type { PendingWill, Session, WillSpec } from './session.js';
import type { StoredWill } from './store.js';

/** The connection ended without a normal DISCONNECT: publish its will now, or hold it for its delay. */
export function scheduleWill(core: Core, s: Session, will: WillSpec, conn: Connection): void {
  const delay = Math.min(will.delay, s.expiryInterval);
  const pending: PendingWill = {
    will,
    publisher: { clientId: conn.clientId, principal: conn.principal! },
    subject: conn.subject,
    fireAt: Date.now() + delay * 1000,
  };
  if (delay <= 0) return publishWill(core, pending);
  holdWill(core, s, pending);
  const subject = conn.subject;
  if (
    s.persistent &&
    (subject === null || authorizeClientPublish(core.hooks, subject, will.topic, will.retain))
  ) {
    s.willStored = true;
    core.persist({ op: 'will', clientId: s.clientId, will: toStored(pending) });
  }
}

/** A will read from the store at start-up, for a session restored with it. */
export function restoreWill(core: Core, s: Session, stored: StoredWill): void {
  s.willStored = true;
  holdWill(core, s, fromStored(s.clientId, stored));
}

/** A stored will of a session that expired while the server was down: published now. */
export function storedWill(clientId: string, stored: StoredWill): PendingWill {
  return fromStored(clientId, stored);
}

function holdWill(core: Core, s: Session, pending: PendingWill): void {
  s.pendingWill = pending;
  // While shutting down the will stays pending (and stored): it fires after the restart.
  if (!core.closing)
    s.willTimer = setTimeout(willDue, Math.max(0, pending.fireAt - Date.now()), core, s).unref();
}

/** Timer callback (one function for every will: no closure per timer). */
function willDue(core: Core, s: Session): void {
  s.willTimer = null;
  const pending = s.pendingWill;
  s.pendingWill = null;
  forgetStored(core, s);
  if (pending) publishWill(core, pending);
}

/** Cancel a pending delayed will because the client reconnected in time [MQTT-3.1.3-9]. */
export function cancelWill(core: Core, s: Session): void {
  if (s.willTimer) clearTimeout(s.willTimer);
  s.willTimer = null;
  s.pendingWill = null;
  forgetStored(core, s);
}

function forgetStored(core: Core, s: Session): void {
  if (!s.willStored) return;
  s.willStored = false;
  core.persist({ op: 'will', clientId: s.clientId, will: null });
}

/**
 * Publish a will. Runs from a timer or while another session ends: a failure is logged and counted,
 * never fatal. Checked when it is published, with the subject of the connection that set it, exactly as a
 * PUBLISH is: no broker event topics, iot:Publish, and iot:RetainPublish for a retained will.
 */
export function publishWill(core: Core, pending: PendingWill): void {
  try {
    const { will, subject, publisher } = pending;
    if (subject && !authorizeClientPublish(core.hooks, subject, will.topic, will.retain)) {
      core.metrics.dropped.not_authorized_publish.inc();
      return;
    }
    // A retained will counts against the same retained quotas as a retained PUBLISH.
    if (will.retain && core.retained.admit(publisher.clientId, will.topic, will.payload.length) !== null) {
      core.metrics.dropped.retained_quota.inc();
      return;
    }
    const expiry = will.properties?.messageExpiryInterval;
    core.route({
      topic: will.topic,
      payload: will.payload,
      qos: will.qos,
      retain: will.retain,
      properties: will.properties,
      expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : null,
      origin: publisher.clientId,
      publisher,
      ingress: performance.now(),
    });
  } catch (err) {
    core.onBackgroundError('will', err);
  }
}

function toStored(p: PendingWill): StoredWill {
  const { will, publisher, subject } = p;
  const info = subject?.info;
  return {
    topic: will.topic,
    payload: will.payload,
    qos: will.qos,
    retain: will.retain,
    properties: will.properties,
    fireAt: p.fireAt,
    principal: publisher.principal,
    info: {
      transport: info?.transport ?? 'tcp',
      remoteAddress: info?.remoteAddress ?? '',
      remotePort: info?.remotePort ?? 0,
      localPort: info?.localPort ?? 0,
    },
  };
}

function fromStored(clientId: string, w: StoredWill): PendingWill {
  const principal = w.principal;
  return {
    will: {
      topic: w.topic,
      payload: w.payload,
      qos: w.qos,
      retain: w.retain,
      properties: w.properties,
      delay: 0,
    },
    publisher: { clientId, principal },
    // Authorized when its connection ended (see above).
    subject: null,
    fireAt: w.fireAt,
  };
}
