/**
 * What every field driver (modbus.ts, opcua.ts, local-mqtt.ts) shares: the readings it hands the gateway,
 * the health it reports per device, and the retry schedule it follows after a failure.
 *
 * Contract: a driver owns one field device. It never throws into the gateway: a failure marks the device
 * `down` with the error, counts it, and retries on the backoff schedule, so one failing device never stops
 * the others. `onReadings` is called synchronously with the values of one read (a poll, a data change).
 */
export interface TagValue {
  readonly tag: string;
  readonly measure: string;
  /** The upstream topic, already rendered. */
  readonly topic: string;
  readonly value: number | string | boolean;
}

export type ReadingsHandler = (device: string, ts: number, values: readonly TagValue[]) => void;

export type DeviceState = 'connecting' | 'up' | 'down' | 'disabled';

export interface DeviceHealth {
  readonly device: string;
  readonly protocol: 'modbus' | 'opcua' | 'mqtt';
  readonly state: DeviceState;
  readonly lastError: string | null;
  /** Failures in a row (0 once a read succeeds). */
  readonly failures: number;
  /** Epoch ms of the next reconnect attempt while down, else null. */
  readonly retryAt: number | null;
  readonly lastReadAt: number | null;
  readonly reads: number;
  readonly errors: number;
  /** Polls that started late because the previous one overran the interval (Modbus). */
  readonly overruns: number;
}

export interface FieldDriver {
  readonly device: string;
  start(): void;
  health(): DeviceHealth;
  /** Change the poll interval (Modbus) or the sampling interval (OPC UA) at run time; false if unsupported. */
  setInterval(ms: number): boolean;
  /** Stop reading (`enabled: false` from the shadow) or start again. */
  setEnabled(enabled: boolean): void;
  close(): Promise<void>;
}

export interface BackoffOptions {
  /** First retry delay (default 500 ms). */
  readonly initialMs?: number;
  /** Longest delay (default 10 s, so a restarted field device is back within about 10 s). */
  readonly maxMs?: number;
  readonly factor?: number;
  /** Random spread, as a fraction of the delay (default 0.2), so many devices do not retry in step. */
  readonly jitter?: number;
}

/** Exponential backoff with jitter: `next()` gives the delay before the next attempt. */
export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions = {}) {}

  next(): number {
    const initial = this.options.initialMs ?? 500;
    const max = this.options.maxMs ?? 10_000;
    const base = Math.min(max, initial * (this.options.factor ?? 2) ** this.attempt++);
    const spread = base * (this.options.jitter ?? 0.2);
    return Math.max(0, Math.round(base - spread + Math.random() * 2 * spread));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Mutable health record a driver keeps and hands out as a snapshot. */
export class HealthTracker {
  state: DeviceState = 'connecting';
  lastError: string | null = null;
  failures = 0;
  retryAt: number | null = null;
  lastReadAt: number | null = null;
  reads = 0;
  errors = 0;
  overruns = 0;

  constructor(
    readonly device: string,
    readonly protocol: DeviceHealth['protocol'],
    private readonly onChange: (h: DeviceHealth) => void,
  ) {}

  ok(ts: number): void {
    this.reads++;
    this.lastReadAt = ts;
    this.failures = 0;
    if (this.state !== 'up') {
      this.state = 'up';
      this.lastError = null;
      this.retryAt = null;
      this.onChange(this.snapshot());
    }
  }

  fail(error: string, retryAt: number | null): void {
    this.errors++;
    this.failures++;
    this.lastError = error;
    this.retryAt = retryAt;
    const changed = this.state !== 'down';
    this.state = 'down';
    if (changed) this.onChange(this.snapshot());
  }

  set(state: DeviceState): void {
    if (this.state === state) return;
    this.state = state;
    this.onChange(this.snapshot());
  }

  snapshot(): DeviceHealth {
    return {
      device: this.device,
      protocol: this.protocol,
      state: this.state,
      lastError: this.lastError,
      failures: this.failures,
      retryAt: this.retryAt,
      lastReadAt: this.lastReadAt,
      reads: this.reads,
      errors: this.errors,
      overruns: this.overruns,
    };
  }
}

/** Apply a tag's scale and offset to a numeric value (booleans and text pass through). */
export function scaled(
  value: number | string | boolean,
  scale: number,
  offset: number,
): number | string | boolean {
  if (typeof value !== 'number' || (scale === 1 && offset === 0)) return value;
  return value * scale + offset;
}
