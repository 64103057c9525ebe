/** Messages and shared-counter layout between the orchestrator and the load-generator workers. */

export const PHASE = 0;
export const PHASE_WARMUP = 0;
export const PHASE_RECORD = 1;

export interface Common {
  readonly port: number;
  readonly conns: number;
  readonly clientPrefix: string;
  readonly qos: 0 | 1;
  readonly shared: SharedArrayBuffer;
  /** This worker's counter slot (messages sent, or messages received). */
  readonly slot: number;
}

export interface PubSpec extends Common {
  readonly role: 'pub';
  /** One topic per connection (index modulo length). */
  readonly topics: readonly string[];
  readonly payloadBytes: number;
  /** QoS 1: unacknowledged PUBLISHes per connection. */
  readonly window: number;
  /** Global gate: max messages sent and not yet delivered to every subscriber. */
  readonly gate: number;
  /** Deliveries expected per message (number of subscribers). */
  readonly fanout: number;
  readonly pubSlots: readonly number[];
  readonly subSlots: readonly number[];
  /** Offered rate in msg/s for this worker; 0 = as fast as the gate allows. */
  readonly rate: number;
  /** Embed a send timestamp in each payload (rate mode). */
  readonly timestamps: boolean;
}

export interface SubSpec extends Common {
  readonly role: 'sub';
  readonly filter: string;
  /** Record end-to-end latency from the timestamp at the start of each payload. */
  readonly latency: boolean;
}

/** Publisher and subscriber in one thread: for latency runs, one fewer thread competing for 2 cores. */
export interface PairSpec {
  readonly role: 'pair';
  readonly pub: PubSpec;
  readonly sub: SubSpec;
}

export type WorkerSpec = PubSpec | SubSpec | PairSpec;

export type ToWorker = { type: 'go' } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'error'; message: string }
  | {
      type: 'result';
      role: 'pub' | 'sub';
      count: number;
      stalls: number;
      latency?: { samples: number; p50: number; p90: number; p99: number; p999: number; max: number };
    };
