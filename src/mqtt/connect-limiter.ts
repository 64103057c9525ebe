/**
 * CONNECTs per client id (AWS IoT Core: 1 per second per client id, reference §11): a token bucket per
 * client id, `rate` tokens a second up to `burst`. Beyond it the CONNECT is refused with CONNACK 0x9F
 * Connection rate exceeded (3.1.1: 3 Server unavailable), counted.
 *
 * Memory bound: a client id is tracked only until its bucket is full again (burst / rate seconds after its
 * last CONNECT); `sweep()` (called from the core's sweep timer) drops those, oldest first, in O(dropped),
 * and at most MAX_TRACKED ids are held (past it the longest idle is forgotten: it would be admitted anyway
 * within burst / rate seconds).
 */
const MAX_TRACKED = 200_000;

interface Bucket {
  tokens: number;
  /** Epoch ms of the last refill. */
  at: number;
}

export class ConnectLimiter {
  /** By client id, in order of last CONNECT (re-inserted on each), so the front is the longest idle. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly fullAfterMs: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.fullAfterMs = rate > 0 ? (burst / rate) * 1000 : 0;
  }

  /** Client ids tracked now (for tests and the memory bound). */
  get tracked(): number {
    return this.buckets.size;
  }

  /** Take a token for a CONNECT of `clientId`; false when its rate is exceeded. */
  admit(clientId: string, now = Date.now()): boolean {
    if (this.rate <= 0) return true;
    let b = this.buckets.get(clientId);
    if (b === undefined) {
      if (this.buckets.size >= MAX_TRACKED) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: now };
    } else {
      this.buckets.delete(clientId);
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
      b.at = now;
    }
    this.buckets.set(clientId, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forget client ids whose bucket is full again (they would be admitted as if new). */
  sweep(now = Date.now()): void {
    for (const [id, b] of this.buckets) {
      if (now - b.at < this.fullAfterMs) break;
      this.buckets.delete(id);
    }
  }
}
