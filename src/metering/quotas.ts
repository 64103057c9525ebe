/**
 * Quotas: per-thing and per-billing-group limits, enforced by the meter on the broker's hot path and by
 * the API wrapper. Limits live in the database (`metering_quotas`) and change at run time: a write
 * publishes a `quota` change event and every node re-reads (module.ts), updating the live buckets in
 * place, so connections already up see the new limit at their next packet.
 *
 * Resolution:
 * - Rate limits (connectRate, publishRate, publishBytesRate, shadowRate, apiRate) apply at two levels at
 *   once: the thing's own bucket (its explicit limit, else the thing default) and, when the thing is in a
 *   billing group with that limit set, the group's bucket shared by all its members (their sum).
 * - `subscriptions` is per connection: the thing's explicit limit, else its billing group's, else the
 *   thing default.
 * - Thing defaults (AWS IoT Core's published limits, reference §11) apply to connections of things (a
 *   principal attached to a thing: certificates); other clients (dev-mode anonymous, access keys) get only
 *   limits set explicitly for their client id. `null` is "no limit".
 */

export const LIMITS = [
  'connectRate',
  'publishRate',
  'publishBytesRate',
  'subscriptions',
  'shadowRate',
  'apiRate',
] as const;
export type LimitName = (typeof LIMITS)[number];

export type Limits = { readonly [K in LimitName]: number | null };

export const LIMIT_HELP: Readonly<Record<LimitName, string>> = {
  connectRate: 'CONNECTs per second (CONNACK 0x9F when over)',
  publishRate: 'PUBLISH messages per second from the thing (PUBACK 0x97; DISCONNECT 0x96 at twice the rate)',
  publishBytesRate: 'PUBLISH bytes per second (topic + payload + properties)',
  subscriptions: 'subscriptions one connection may hold (SUBACK 0x97)',
  shadowRate: 'shadow requests per second over MQTT and HTTP (PUBACK 0x97 / 429 ThrottlingException)',
  apiRate: 'registry API calls naming the thing per second (ThrottlingException)',
};

/**
 * AWS IoT Core's published limits as thing defaults (reference §11): 100 publishes/s and ~512 KB/s per
 * connection, 50 subscriptions per connection [U third-party summaries]. AWS's 1 CONNECT per client id per
 * second is the broker's own limiter (limits.connectsPerClientIdPerSecond), and the shadow context enforces
 * AWS's 20 updates/s per thing (shadow.maxUpdatesPerSecondPerThing), so those defaults stay null here.
 */
export const AWS_THING_DEFAULTS: Limits = {
  connectRate: null,
  publishRate: 100,
  publishBytesRate: 512 * 1024,
  subscriptions: 50,
  shadowRate: null,
  apiRate: null,
};

export const NO_LIMITS: Limits = {
  connectRate: null,
  publishRate: null,
  publishBytesRate: null,
  subscriptions: null,
  shadowRate: null,
  apiRate: null,
};

export function isLimitName(name: string): name is LimitName {
  return (LIMITS as readonly string[]).includes(name);
}

/**
 * A token bucket refilled at `rate` per second, holding up to `burstSeconds` of it (metering.burstSeconds:
 * AWS documents its rates, not their bursts [U]; 10 s lets a gateway replay a short outage's backlog while
 * the average stays at the rate). The rate changes in place when the limit changes. Hot path: `take` is a
 * few float operations, no allocation.
 */
export class Bucket {
  tokens: number;
  private last: number;
  private capacity: number;
  constructor(
    public rate: number,
    now: number,
    private readonly burstSeconds = 1,
  ) {
    this.capacity = rate * burstSeconds;
    this.tokens = this.capacity;
    this.last = now;
  }

  setRate(rate: number): void {
    this.rate = rate;
    this.capacity = rate * this.burstSeconds;
    if (this.tokens > this.capacity) this.tokens = this.capacity;
  }

  /** Take `n` tokens at `now` (ms); false (nothing taken) when there are not enough. */
  take(n: number, now: number): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
    // A single request larger than the whole bucket (a 600 KB publish under a 512 KB/s limit) passes when
    // the bucket is full, and leaves it in debt: refusing it forever would be no rate at all.
    if (this.tokens >= n || this.tokens >= this.capacity) {
      this.tokens -= n;
      return true;
    }
    return false;
  }
}

/** The live limit state of one scope (a thing or a billing group): explicit limits plus their buckets. */
export class ScopeQuota {
  readonly buckets: { [K in LimitName]?: Bucket | null } = {};
  constructor(
    readonly kind: 'thing' | 'billingGroup',
    readonly name: string,
    /** The effective limits for this scope (explicit merged over the defaults that apply to it). */
    public limits: Limits,
    now: number,
    private readonly burstSeconds = 1,
  ) {
    this.rebuild(now);
  }

  /** Apply new limits: buckets are kept (their tokens too) where the limit stays, dropped where it goes. */
  update(limits: Limits, now: number): void {
    this.limits = limits;
    this.rebuild(now);
  }

  private rebuild(now: number): void {
    for (const name of LIMITS) {
      if (name === 'subscriptions') continue;
      const value = this.limits[name];
      const existing = this.buckets[name];
      if (value === null) this.buckets[name] = null;
      else if (existing) existing.setRate(value);
      else this.buckets[name] = new Bucket(value, now, this.burstSeconds);
    }
  }
}

/** One throttle, as counted, published as a usage event and returned to the caller. */
export interface Throttle {
  readonly thing: string;
  readonly billingGroup: string | null;
  readonly limit: LimitName;
  /** Whose limit refused: the thing's own or its billing group's. */
  readonly scope: 'thing' | 'billingGroup';
  readonly value: number;
  /** What happened to the request. */
  readonly action: 'refused' | 'disconnected';
  readonly at: number;
}

/** The reason string of a throttle: names the limit, its value and how to change it. */
export function throttleReason(t: Omit<Throttle, 'action' | 'at'>): string {
  const unit = t.limit === 'subscriptions' ? '' : t.limit === 'publishBytesRate' ? ' bytes/s' : '/s';
  const who = t.scope === 'thing' ? `thing ${t.thing}` : `billing group ${t.billingGroup}`;
  const flag = t.scope === 'thing' ? `--thing ${t.thing}` : `--billing-group ${t.billingGroup}`;
  return (
    `quota exceeded: ${t.limit} ${t.value}${unit} of ${who} ` +
    `(change it with: thingstead quota set ${flag} ${t.limit} <value>)`
  );
}

/** Validate one limit value from the API or CLI: a non-negative finite number, or null to remove it. */
export function checkLimitValue(value: unknown): value is number | null {
  return value === null || (typeof value === 'number' && Number.isFinite(value) && value >= 0);
}
