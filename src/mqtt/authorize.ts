/**
 * Authorization of what clients cause, on every path: live PUBLISHes, wills, and deliveries of stored
 * messages (queued for a session, in flight at takeover, retained). Each function denies when a hook throws.
 */
import type { AuthHooks, AuthzSubject } from './hooks.js';
import { isBrokerOwned } from './services.js';

/**
 * May this client publish `topic` (with RETAIN)? The one check for live PUBLISHes and wills: the broker-owned
 * namespaces (services.ts, `$aws/events/#`) are refused to every client (no spoofed presence or lifecycle
 * events), then `iot:Publish`, then `iot:RetainPublish` for retained messages (AWS §9.2). A throwing hook denies.
 */
export function authorizeClientPublish(
  hooks: AuthHooks,
  subject: AuthzSubject,
  topic: string,
  retain: boolean,
): boolean {
  if (isBrokerOwned(topic)) return false;
  try {
    return hooks.authorizePublish(subject, topic) && (!retain || hooks.authorizeRetain(subject, topic));
  } catch {
    return false;
  }
}

/** `iot:Receive` for one delivery; a throwing hook denies. */
export function authorizeReceive(hooks: AuthHooks, subject: AuthzSubject, topic: string): boolean {
  try {
    return hooks.authorizeReceive(subject, topic);
  } catch {
    return false;
  }
}

/** `iot:Subscribe` for a filter (stored subscriptions are checked again when a session resumes). */
export function authorizeSubscribe(hooks: AuthHooks, subject: AuthzSubject, filter: string): boolean {
  try {
    return hooks.authorizeSubscribe(subject, filter);
  } catch {
    return false;
  }
}

/** Run a hook's decision; a hook that throws denies. */
export function safe(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}
