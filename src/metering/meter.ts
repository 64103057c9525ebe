/**
 * The usage meter: the broker's `UsageMeter` (per-connection counters and quota gates on the hot path) and
 * the in-memory hourly ledger the module flushes to the store in batches.
 *
 * Contracts:
 * - Hot path (`ConnUsage` methods): synchronous, no allocation while under quota, never throws. Counting is
 *   a few additions into the connection's Float64Array; the clock is read only when a rate limit applies.
 * - Exact, not sampled: every metered packet adds to its connection's counters; `drain` moves them (and
 *   the usage counted off the broker: API, rules, jobs) into the ledger under the UTC hour of the drain.
 *   The module drains at every flush and at every hour boundary, so a count lands in the hour it happened
 *   in, give or take the timer's lateness (milliseconds).
 * - Bounded: the ledger holds one row per (hour, thing, billing group) drained since the last successful
 *   flush; thing quota states exist for live things only (plus at most MAX_IDLE_THINGS recently used by
 *   the API); nothing else grows with traffic.
 */
import type { AuthzSubject, ConnectionUsage, UsageMeter } from '../mqtt/index.js';
import {
  AWS_THING_DEFAULTS,
  NO_LIMITS,
  ScopeQuota,
  throttleReason,
  type LimitName,
  type Limits,
  type Throttle,
} from './quotas.js';
import { U, UNITS, UNIT_COUNT, hourOf, units1k, units4k, units5k, type Unit } from './units.js';

/** One ledger row: the amount of one unit used by one thing (in one billing group) in one UTC hour. */
export interface UsageRow {
  /** Start of the UTC hour, epoch ms. */
  readonly hour: number;
  /** Thing name ('' for usage no thing can be named for, e.g. ListThings). */
  readonly thing: string;
  /** Billing group of the thing when the usage was drained ('' for none). */
  readonly billingGroup: string;
  readonly unit: Unit;
  readonly amount: number;
}

export interface MeterOptions {
  /** Clock (epoch ms); injectable for tests (connection minutes, hours, buckets). */
  readonly now: () => number;
  /** The thing's billing group from the module's directory (synchronous, cached); null for none. */
  readonly groupOf: (thing: string) => string | null;
  /** Limits set explicitly (from the store), by scope name. */
  readonly explicit: () => {
    readonly things: ReadonlyMap<string, Partial<Limits>>;
    readonly groups: ReadonlyMap<string, Partial<Limits>>;
  };
  /** Thing defaults (AWS's published limits unless configured otherwise). */
  readonly thingDefaults: Limits;
  /** Seconds of its rate a bucket holds (metering.burstSeconds; default 1 here, 10 in the config). */
  readonly burstSeconds?: number;
  /** A request was throttled: count it, publish the usage event (module.ts). Called off nothing hot. */
  readonly onThrottle: (throttle: Throttle) => void;
}

// Counter indexes as module constants (the hot path indexes a Float64Array with them).
const MINUTES = U.connection_minutes;
const MSG_IN = U.messages_in;
const MSG_OUT = U.messages_out;
const RETAINED = U.retained;
const MSG_IN_4K = U.messages_in_4kb;
const MSG_OUT_4K = U.messages_out_4kb;
const BYTES_IN = U.bytes_in;
const BYTES_OUT = U.bytes_out;
const SHADOW_OPS = U.shadow_ops;
const THROTTLED = U.throttled;

const SHADOW_OP = /^\$aws\/things\/[^/]+\/shadow\/(?:name\/[^/]+\/)?(?:get|update|delete)$/;
const MINUTE_MS = 60_000;
/** Thing states kept without a live connection (API-only callers), beyond which idle ones are dropped. */
const MAX_IDLE_THINGS = 10_000;

/** What the meter keeps per thing in use: its quota state and billing group. */
class ThingState {
  conns = 0;
  group: string | null = null;
  groupQuota: ScopeQuota | null = null;
  /** Any publish limit applies (thing or group): the only case where the hot path reads the clock. */
  publishLimited = false;
  constructor(
    readonly name: string,
    /** A thing proper (principal attached to a thing): thing defaults apply. */
    readonly device: boolean,
    readonly quota: ScopeQuota,
  ) {}

  refresh(): void {
    const q = this.quota.buckets;
    const g = this.groupQuota?.buckets;
    this.publishLimited = !!(q.publishRate || q.publishBytesRate || g?.publishRate || g?.publishBytesRate);
  }

  /** Subscriptions per connection: the thing's explicit limit, else the group's, else the thing default. */
  subscriptionLimit(explicit: Partial<Limits> | undefined, defaults: Limits): number | null {
    if (explicit?.subscriptions !== undefined) return explicit.subscriptions;
    const g = this.groupQuota?.limits.subscriptions;
    if (g !== undefined && g !== null) return g;
    return this.device ? defaults.subscriptions : null;
  }
}

/** The per-connection counters the broker calls on its hot path. */
class ConnUsage implements ConnectionUsage {
  bytesIn = 0;
  bytesOut = 0;
  refusal = '';
  readonly counts = new Float64Array(UNIT_COUNT);
  private minutesCharged = 0;
  private readonly openedAt: number;
  private refusedWindow = 0;
  private refusedInWindow = 0;
  closed = false;

  constructor(
    private readonly meter: Meter,
    readonly thing: ThingState,
    connectBytes: number,
  ) {
    this.openedAt = meter.now();
    this.controlIn(connectBytes);
  }

  publishIn(bytes: number, retain: boolean, topic: string): number {
    const t = this.thing;
    const shadow = topic.charCodeAt(0) === 36 && SHADOW_OP.test(topic);
    if (t.publishLimited || (shadow && this.meter.shadowLimited(t))) {
      const rc = this.admitPublish(bytes, shadow);
      if (rc !== 0) return rc;
    }
    const c = this.counts;
    const u = units5k(bytes);
    c[MSG_IN]! += u;
    c[MSG_IN_4K]! += units4k(bytes);
    if (retain) c[RETAINED]! += u;
    if (shadow) c[SHADOW_OPS]! += units1k(bytes);
    return 0;
  }

  /** The quota checks of one PUBLISH (only when a limit applies). */
  private admitPublish(bytes: number, shadow: boolean): number {
    const now = this.meter.now();
    const t = this.thing;
    const refused =
      this.meter.take(t, 'publishRate', 1, now) ??
      this.meter.take(t, 'publishBytesRate', bytes, now) ??
      (shadow ? this.meter.take(t, 'shadowRate', 1, now) : null);
    if (refused === null) return 0;
    // A client sending at more than twice its rate (refusals in one second beyond the limit) is cut off.
    const second = Math.floor(now / 1000);
    if (second !== this.refusedWindow) {
      this.refusedWindow = second;
      this.refusedInWindow = 0;
    }
    this.refusedInWindow++;
    const disconnect =
      refused.limit !== 'publishBytesRate' && this.refusedInWindow > Math.max(10, refused.value);
    this.refusal = disconnect
      ? `message rate too high: ${throttleReason(refused).replace(/^quota exceeded: /, '')}`
      : throttleReason(refused);
    this.counts[THROTTLED]!++;
    this.meter.throttled({ ...refused, action: disconnect ? 'disconnected' : 'refused', at: now });
    return disconnect ? 0x96 : 0x97;
  }

  publishOut(bytes: number): void {
    const c = this.counts;
    c[MSG_OUT]! += units5k(bytes);
    c[MSG_OUT_4K]! += units4k(bytes);
  }

  controlIn(bytes: number): void {
    const c = this.counts;
    c[MSG_IN]! += units5k(bytes);
    c[MSG_IN_4K]! += units4k(bytes);
  }

  admitSubscriptions(total: number): string | null {
    const limit = this.meter.subscriptionLimit(this.thing);
    if (limit === null || total <= limit) return null;
    const t = this.thing;
    // The group's limit decided only when the thing has none of its own and the group has one.
    const groupLimit = t.groupQuota?.limits.subscriptions;
    const scope =
      this.meter.explicitThing(t.name)?.subscriptions === undefined &&
      groupLimit !== undefined &&
      groupLimit !== null
        ? 'billingGroup'
        : 'thing';
    const throttle = {
      thing: t.name,
      billingGroup: t.group,
      limit: 'subscriptions' as const,
      scope,
      value: limit,
    } as const;
    this.refusal = throttleReason(throttle);
    this.counts[THROTTLED]!++;
    this.meter.throttled({ ...throttle, action: 'refused', at: this.meter.now() });
    return this.refusal;
  }

  close(): void {
    if (this.closed) return;
    this.chargeMinutes(this.meter.now());
    this.closed = true;
    this.meter.closed(this);
  }

  /** Every started minute of the connection, charged once (minute 1 at the first drain). */
  chargeMinutes(now: number): void {
    if (this.closed) return;
    const due = Math.max(1, Math.ceil((now - this.openedAt) / MINUTE_MS));
    if (due > this.minutesCharged) {
      this.counts[MINUTES]! += due - this.minutesCharged;
      this.minutesCharged = due;
    }
  }

  /** Move the counters into `into` and zero them. */
  drainInto(into: Float64Array, now: number): void {
    this.chargeMinutes(now);
    const c = this.counts;
    c[BYTES_IN]! += this.bytesIn;
    c[BYTES_OUT]! += this.bytesOut;
    this.bytesIn = 0;
    this.bytesOut = 0;
    for (let i = 0; i < UNIT_COUNT; i++) {
      into[i]! += c[i]!;
      c[i] = 0;
    }
  }
}

/** The meter: one per platform process. */
export class Meter implements UsageMeter {
  readonly now: () => number;
  private readonly live = new Set<ConnUsage>();
  private readonly ended: ConnUsage[] = [];
  private readonly things = new Map<string, ThingState>();
  private readonly groups = new Map<string, ScopeQuota>();
  /** Usage counted off the broker (API, rules, jobs), per thing, until the next drain. */
  private readonly pending = new Map<string, Float64Array>();
  /** Drained and not yet flushed: `${hour}\0${thing}\0${group}` -> counters. */
  private ledger = new Map<string, Float64Array>();

  constructor(private readonly options: MeterOptions) {
    this.now = options.now;
  }

  // ---- UsageMeter (the broker) ------------------------------------------------------------------------

  admitConnect(subject: AuthzSubject): string | null {
    const t = this.thingState(thingOf(subject), subject.principal.thingName !== undefined);
    const refused = this.take(t, 'connectRate', 1, this.now());
    if (refused === null) return null;
    this.add(t.name, 'throttled', 1);
    this.throttled({ ...refused, action: 'refused', at: this.now() });
    return throttleReason(refused);
  }

  open(subject: AuthzSubject, connectBytes: number): ConnectionUsage {
    const t = this.thingState(thingOf(subject), subject.principal.thingName !== undefined);
    t.conns++;
    const usage = new ConnUsage(this, t, connectBytes);
    this.live.add(usage);
    return usage;
  }

  // ---- usage off the broker --------------------------------------------------------------------------

  /** Count `amount` of `unit` for a thing ('' when no thing is named). */
  add(thing: string, unit: Unit, amount: number): void {
    let c = this.pending.get(thing);
    if (!c) this.pending.set(thing, (c = new Float64Array(UNIT_COUNT)));
    c[U[unit]]! += amount;
  }

  /**
   * May an API call naming `thing` go ahead under `limit` (apiRate, shadowRate)? Null: yes (a token was
   * taken); else the throttle (counted, published), whose reason names the limit.
   */
  admitApi(thing: string, limit: 'apiRate' | 'shadowRate'): Throttle | null {
    if (thing === '') return null;
    const t = this.thingState(thing, true);
    const now = this.now();
    const refused = this.take(t, limit, 1, now);
    if (refused === null) return null;
    const throttle: Throttle = { ...refused, action: 'refused', at: now };
    this.add(thing, 'throttled', 1);
    this.throttled(throttle);
    return throttle;
  }

  /**
   * One HTTP publish (the data plane's SigV4 Publish, a device's POST /topics/{topic} over mutual TLS),
   * metered as the MQTT PUBLISH it becomes (publish.ts's `publishIn`): call it once the request is valid
   * and authorized, before the broker routes it. Admitted: counted as one message in 5 KB blocks of
   * `bytes` (topic + payload + MQTT 5 properties), plus `retained` and `shadow_ops` as for MQTT, and
   * `bodyBytes` (the HTTP body) as bytes_in; returns null. Refused by the publisher's publishRate,
   * publishBytesRate or (shadow topics) shadowRate, shared with its MQTT connections: counted as
   * `throttled`, published, and the reason string returned (nothing else counted). The publisher is metered
   * as `thingOf` says: the certificate's thing; '' for an access key (HTTP has no client id), which no
   * quota applies to, as for API calls naming no thing. Not on the MQTT hot path; never throws.
   */
  httpPublish(
    publisher: Pick<AuthzSubject, 'clientId' | 'principal'>,
    publish: {
      readonly bytes: number;
      readonly bodyBytes: number;
      readonly retain: boolean;
      readonly topic: string;
    },
  ): string | null {
    const thing = thingOf(publisher);
    const { bytes, topic } = publish;
    const shadow = topic.charCodeAt(0) === 36 && SHADOW_OP.test(topic);
    if (thing !== '') {
      const t = this.thingState(thing, publisher.principal.thingName !== undefined);
      if (t.publishLimited || (shadow && this.shadowLimited(t))) {
        const now = this.now();
        const refused =
          this.take(t, 'publishRate', 1, now) ??
          this.take(t, 'publishBytesRate', bytes, now) ??
          (shadow ? this.take(t, 'shadowRate', 1, now) : null);
        if (refused !== null) {
          this.add(thing, 'throttled', 1);
          this.throttled({ ...refused, action: 'refused', at: now });
          return throttleReason(refused);
        }
      }
    }
    const u = units5k(bytes);
    this.add(thing, 'messages_in', u);
    this.add(thing, 'messages_in_4kb', units4k(bytes));
    this.add(thing, 'bytes_in', publish.bodyBytes);
    if (publish.retain) this.add(thing, 'retained', u);
    if (shadow) this.add(thing, 'shadow_ops', units1k(bytes));
    return null;
  }

  // ---- ledger ----------------------------------------------------------------------------------------

  /**
   * Move every counter into the ledger under the current UTC hour. The first drain after an hour boundary
   * first puts everything counted so far under the hour that ended, with connection minutes charged up to
   * the boundary (a minute belongs to the hour it started in).
   */
  drain(): void {
    const now = this.now();
    const hour = hourOf(now);
    if (this.lastHour !== null && hour > this.lastHour) this.drainAt(hour, this.lastHour);
    this.drainAt(now, hour);
    this.lastHour = hour;
  }

  private lastHour: number | null = null;

  /** Drain into the rows of `hour`, charging connection minutes started before `instant`. */
  private drainAt(instant: number, hour: number): void {
    for (const c of this.live) c.drainInto(this.row(hour, c.thing.name, c.thing.group ?? ''), instant);
    for (const c of this.ended.splice(0))
      c.drainInto(this.row(hour, c.thing.name, c.thing.group ?? ''), instant);
    for (const [thing, counts] of this.pending) {
      const into = this.row(hour, thing, (thing && this.options.groupOf(thing)) || '');
      for (let i = 0; i < UNIT_COUNT; i++) into[i]! += counts[i]!;
    }
    this.pending.clear();
  }

  /** The drained rows (non-zero amounts), removing them from the ledger. */
  takeRows(): UsageRow[] {
    const rows: UsageRow[] = [];
    for (const [key, counts] of this.ledger) {
      const [hour, thing, billingGroup] = key.split('\u0000') as [string, string, string];
      for (let i = 0; i < UNIT_COUNT; i++)
        if (counts[i]! > 0)
          rows.push({ hour: Number(hour), thing, billingGroup, unit: UNITS[i]!, amount: counts[i]! });
    }
    this.ledger = new Map();
    return rows;
  }

  /** Put rows back after a failed flush (they are written with the next one). */
  restore(rows: readonly UsageRow[]): void {
    for (const r of rows) this.row(r.hour, r.thing, r.billingGroup)[U[r.unit]]! += r.amount;
  }

  /** Rows waiting in memory (for the gauge and /healthz). */
  get ledgerSize(): number {
    return this.ledger.size;
  }

  private row(hour: number, thing: string, group: string): Float64Array {
    const key = `${hour}\u0000${thing}\u0000${group}`;
    let c = this.ledger.get(key);
    if (!c) this.ledger.set(key, (c = new Float64Array(UNIT_COUNT)));
    return c;
  }

  // ---- quotas ----------------------------------------------------------------------------------------

  /** Re-read the limits and billing groups of every thing in use (after a quota or thing change). */
  refresh(thing?: string): void {
    const now = this.now();
    const explicit = this.options.explicit();
    for (const [name, q] of this.groups) q.update(merge(NO_LIMITS, explicit.groups.get(name)), now);
    for (const t of thing === undefined ? this.things.values() : [this.things.get(thing)]) {
      if (!t) continue;
      t.quota.update(this.thingLimits(t.name, t.device), now);
      this.attachGroup(t);
    }
  }

  /** Take `n` from the thing's bucket, then its group's; the refusing limit, or null (all taken). */
  take(t: ThingState, limit: LimitName, n: number, now: number): Omit<Throttle, 'action' | 'at'> | null {
    const own = t.quota.buckets[limit];
    if (own && !own.take(n, now))
      return { thing: t.name, billingGroup: t.group, limit, scope: 'thing', value: own.rate };
    const group = t.groupQuota?.buckets[limit];
    if (group && !group.take(n, now)) {
      if (own) own.tokens += n; // not used after all
      return { thing: t.name, billingGroup: t.group, limit, scope: 'billingGroup', value: group.rate };
    }
    return null;
  }

  shadowLimited(t: ThingState): boolean {
    return !!(t.quota.buckets.shadowRate || t.groupQuota?.buckets.shadowRate);
  }

  subscriptionLimit(t: ThingState): number | null {
    return t.subscriptionLimit(this.options.explicit().things.get(t.name), this.options.thingDefaults);
  }

  explicitThing(name: string): Partial<Limits> | undefined {
    return this.options.explicit().things.get(name);
  }

  throttled(t: Throttle): void {
    try {
      this.options.onThrottle(t);
    } catch {
      // The event is best effort; the refusal itself stands and was counted.
    }
  }

  closed(c: ConnUsage): void {
    this.live.delete(c);
    this.ended.push(c);
    c.thing.conns--;
  }

  private thingState(name: string, device: boolean): ThingState {
    let t = this.things.get(name);
    if (t && (t.device || !device)) return t;
    if (this.things.size >= MAX_IDLE_THINGS) this.dropIdle();
    const now = this.now();
    const previous = t;
    t = new ThingState(
      name,
      device,
      new ScopeQuota('thing', name, this.thingLimits(name, device), now, this.options.burstSeconds),
    );
    if (previous) t.conns = previous.conns;
    this.attachGroup(t);
    this.things.set(name, t);
    return t;
  }

  private thingLimits(name: string, device: boolean): Limits {
    return merge(device ? this.options.thingDefaults : NO_LIMITS, this.options.explicit().things.get(name));
  }

  private attachGroup(t: ThingState): void {
    const group = this.options.groupOf(t.name);
    t.group = group;
    if (group === null) t.groupQuota = null;
    else {
      let q = this.groups.get(group);
      if (!q) {
        q = new ScopeQuota(
          'billingGroup',
          group,
          merge(NO_LIMITS, this.options.explicit().groups.get(group)),
          this.now(),
          this.options.burstSeconds,
        );
        this.groups.set(group, q);
      }
      t.groupQuota = q;
    }
    t.refresh();
  }

  private dropIdle(): void {
    for (const [name, t] of this.things) if (t.conns <= 0) this.things.delete(name);
  }
}

/** The thing a connection (or an HTTP publisher) is metered to: its attached thing, else its client id. */
export function thingOf(subject: Pick<AuthzSubject, 'clientId' | 'principal'>): string {
  return subject.principal.thingName ?? subject.clientId;
}

function merge(base: Limits, explicit: Partial<Limits> | undefined): Limits {
  return explicit ? { ...base, ...explicit } : base;
}

export { AWS_THING_DEFAULTS };
