/**
 * Will messages [MQTT-3.1.2-8..18, MQTT-3.1.3-9]: published when a connection ends without DISCONNECT
 * 0x00 (handlers clear the will on a normal DISCONNECT), after the v5 Will Delay Interval or when the
 * session ends, whichever is first; cancelled when the client reconnects to the session in time.
 * Pending delayed wills are memory-only: on graceful shutdown they are published at once.
 */
import type { Connection } from './connection.js';
import type { Core } from './core.js';
import { authorizeClientPublish } from './authorize.js';
import type { Session, WillSpec } from './session.js';
import type { Publisher } from './types.js';

export function scheduleWill(core: Core, s: Session, will: WillSpec, conn: Connection): void {
  const publisher: Publisher = { clientId: conn.clientId, principal: conn.principal! };
  const subject = conn.subject;
  const delay = Math.min(will.delay, s.expiryInterval);
  const fire = () => {
    s.willTimer = null;
    s.pendingWill = null;
    s.willFire = null;
    // Checked when the will is published, with the subject of the connection that set it, exactly as a
    // PUBLISH is: no broker event topics, iot:Publish, and iot:RetainPublish for a retained will.
    if (subject && !authorizeClientPublish(core.hooks, subject, will.topic, will.retain)) {
      core.metrics.dropped.not_authorized_publish.inc();
      return;
    }
    // A retained will counts against the same retained quotas as a retained PUBLISH.
    if (will.retain && core.retained.admit(conn.clientId, will.topic, will.payload.length) !== null) {
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
      origin: conn.clientId,
      publisher,
      ingress: performance.now(),
    });
  };
  // Runs from a timer or while another session ends: a failure is logged and counted, never fatal.
  const guarded = () => {
    try {
      fire();
    } catch (err) {
      core.onBackgroundError('will', err);
    }
  };
  if (delay <= 0 || core.closing) return guarded();
  s.pendingWill = will;
  s.willFire = guarded;
  s.willTimer = setTimeout(guarded, delay * 1000);
}

/** Cancel a pending delayed will because the client reconnected in time [MQTT-3.1.3-9]. */
export function cancelWill(s: Session): void {
  if (s.willTimer) clearTimeout(s.willTimer);
  s.willTimer = null;
  s.pendingWill = null;
  s.willFire = null;
}
