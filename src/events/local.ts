import type {
  ChangeChannel,
  ChangeEvent,
  ChangeKind,
  ChangeListener,
  ChangeOrigin,
  PublishedEvent,
} from './types.js';
import { MAX_EVENT_BYTES } from './types.js';

interface Subscription {
  readonly kinds: ReadonlySet<string>;
  readonly listener: ChangeListener<ChangeKind>;
}

/**
 * The subscriber list both channels share: in-order delivery, one event after another, errors isolated.
 * Internal to the events context.
 */
export class Subscribers {
  private readonly subs = new Set<Subscription>();
  /** Deliveries run one after another so events reach every subscriber in publish order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly onError: (err: unknown, event: ChangeEvent) => void) {}

  add<K extends ChangeKind>(kinds: readonly K[], listener: ChangeListener<K>): () => void {
    const sub: Subscription = {
      kinds: new Set(kinds),
      listener: listener as unknown as ChangeListener<ChangeKind>,
    };
    this.subs.add(sub);
    return () => this.subs.delete(sub);
  }

  /**
   * Run every subscriber of the event, one after another. Local events run at once: a subscriber may
   * itself publish (and await it) without waiting behind the event it is handling. Remote events queue
   * behind each other, so another process's events are applied in the order it published them.
   */
  deliver(event: ChangeEvent, origin: ChangeOrigin): Promise<void> {
    if (origin === 'local') return this.run(event, origin);
    const next = this.chain.then(() => this.run(event, origin));
    this.chain = next;
    return next;
  }

  private async run(event: ChangeEvent, origin: ChangeOrigin): Promise<void> {
    for (const s of [...this.subs]) {
      if (event.kind !== 'resync' && !s.kinds.has(event.kind)) continue;
      try {
        await s.listener(event, origin);
      } catch (err) {
        this.onError(err, event);
      }
    }
  }

  /** Resolves when every remote delivery queued so far is done. */
  idle(): Promise<void> {
    return this.chain;
  }
}

/** Encode an event, refusing one over the cross-process limit on every channel (same contract on both). */
export function encodeEvent(event: PublishedEvent): string {
  const text = JSON.stringify(event);
  if (Buffer.byteLength(text) > MAX_EVENT_BYTES)
    throw new TypeError(
      `change event ${event.kind} is over ${MAX_EVENT_BYTES} bytes: send ids and let receivers re-read`,
    );
  return text;
}

/**
 * The in-process channel: the embedded SQLite mode (one process) and unit tests.
 * @example const events = createLocalChannel(); events.subscribe(['thing'], (e) => ...); await events.publish({ kind: 'thing', name: 'dev1' });
 */
export function createLocalChannel(
  options: { onError?: (err: unknown, event: ChangeEvent) => void } = {},
): ChangeChannel {
  const subscribers = new Subscribers(options.onError ?? (() => undefined));
  let closed = false;
  return {
    kind: 'local',
    async publish(event) {
      encodeEvent(event);
      if (closed) return;
      await subscribers.deliver(event, 'local');
    },
    subscribe: (kinds, listener) => subscribers.add(kinds, listener),
    async close() {
      closed = true;
      await subscribers.idle();
    },
  };
}
