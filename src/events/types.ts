/**
 * The change-event contract: after a context commits a store write it publishes one small typed event
 * naming what changed (ids, never the new state); subscribers re-read what they need from the owning
 * context. Events are hints to re-read, so they are idempotent and a duplicate costs only a re-read.
 *
 * A later context adds its events by adding a key to `ChangeEventMap` (shadows, jobs, ...).
 */

/** Every event kind and its fields. Keep payloads small: the cross-process channel caps them (8000 bytes). */
export interface ChangeEventMap {
  /** A thing was created, updated (attributes, type, billing group) or deleted. */
  thing: { readonly name: string; readonly deleted?: boolean };
  thingType: { readonly name: string; readonly deleted?: boolean };
  /** A thing group (static or dynamic) was created, updated or deleted. */
  thingGroup: { readonly name: string; readonly dynamic?: boolean; readonly deleted?: boolean };
  /** A thing joined or left a static thing group. */
  membership: { readonly thing: string; readonly group: string };
  /** A principal (certificate ARN) was attached to or detached from a thing. */
  principal: { readonly thing: string; readonly principal: string };
  /** A registry setting (event configurations, registration code) changed. */
  registrySetting: { readonly key: string };
  /** A policy was created or deleted, or one of its versions added, deleted or made the default. */
  policy: { readonly name: string };
  /** A policy was attached to or detached from a target (certificate ARN, thing-group ARN, anonymous). */
  policyAttachment: { readonly policy: string; readonly target: string };
  /** A device certificate was registered, changed status or was deleted. */
  certificate: {
    readonly certificateId: string;
    readonly status: string;
    /** Set when the certificate was just auto-registered by this CA (JITR). */
    readonly autoRegisteredBy?: string;
  };
  /** A CA certificate was registered, changed status or was deleted. */
  ca: { readonly certificateId: string; readonly status: string };
  /** A topic rule was created, replaced, enabled, disabled or deleted. */
  rule: { readonly name: string };
  /** A topic rule destination was created, changed status (confirmed, enabled, disabled, error) or deleted. */
  ruleDestination: { readonly arn: string };
  /** A device shadow was updated or deleted (`name` '' is the classic shadow); `version` is the new one. */
  shadow: {
    readonly thing: string;
    readonly name: string;
    readonly version: number;
    readonly deleted?: boolean;
  };
  /** A quota limit of a thing or billing group was set or removed (src/metering). */
  quota: { readonly scope: 'thing' | 'billingGroup'; readonly name: string };
  /** An API access key was created or deleted. */
  accessKey: { readonly accessKeyId: string; readonly deleted?: boolean };
  /**
   * Produced by a channel, never published: events may have been missed (the cross-process listener was
   * disconnected). Every subscriber re-reads what it caches.
   */
  resync: Record<never, never>;
}

export type ChangeKind = keyof ChangeEventMap;
/** One event: `{ kind, ...fields }`. */
export type ChangeEvent = { [K in ChangeKind]: { readonly kind: K } & ChangeEventMap[K] }[ChangeKind];
export type ChangeOf<K extends ChangeKind> = Extract<ChangeEvent, { kind: K }>;
/** Events a context may publish (resync is the channel's own). */
export type PublishedEvent = Exclude<ChangeEvent, { kind: 'resync' }>;

/** `local`: published in this process; `remote`: published by another process sharing the database. */
export type ChangeOrigin = 'local' | 'remote';

export type ChangeListener<K extends ChangeKind> = (
  event: ChangeOf<K | 'resync'>,
  origin: ChangeOrigin,
) => void | Promise<unknown>;

/**
 * A typed channel of change events.
 *
 * Ordering and delivery contract:
 * - `publish` is called after the write committed. It resolves once every local subscriber has run (and
 *   the promise each returned has settled), so a caller that awaits it reads its own writes everywhere in
 *   this process; and once the event was handed to the other processes (cross-process channel).
 * - Subscribers of one event are called one at a time, in subscription order. Another process's events
 *   are applied one after another in the order it published them; a local event is delivered at once (a
 *   subscriber may publish and await its own event). A subscriber that throws or rejects is reported to
 *   `onError` and does not stop the others.
 * - Across processes delivery is at most once; a channel that may have missed events delivers `resync`
 *   to every subscriber (whatever kinds it asked for) as soon as it can listen again.
 */
export interface ChangeChannel {
  readonly kind: 'local' | 'postgres';
  /** Throws TypeError when the encoded event is over the channel's payload limit (a programming error). */
  publish(event: PublishedEvent): Promise<void>;
  /** Receive the given kinds (plus `resync`); returns an unsubscribe. */
  subscribe<K extends ChangeKind>(kinds: readonly K[], listener: ChangeListener<K>): () => void;
  /** Stop listening; resolves when events published so far have been sent. */
  close(): Promise<void>;
}

/** Largest encoded event (PostgreSQL NOTIFY payloads must be under 8000 bytes). */
export const MAX_EVENT_BYTES = 7900;
