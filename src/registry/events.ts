import { randomUUID } from 'node:crypto';
import type { RegistryStore } from './store.js';

/**
 * Registry events (reference §8.6; AWS IoT Developer Guide "Registry events"): off by default, switched per
 * event type with UpdateEventConfigurations, published on `$aws/events/...` through the broker. Payloads
 * carry eventType, eventId, timestamp (epoch ms), operation and accountId.
 */

/** EventType enum of UpdateEventConfigurations (reference §3.10). */
export const EVENT_TYPES = [
  'THING',
  'THING_GROUP',
  'THING_TYPE',
  'THING_GROUP_MEMBERSHIP',
  'THING_GROUP_HIERARCHY',
  'THING_TYPE_ASSOCIATION',
  'JOB',
  'JOB_EXECUTION',
  'POLICY',
  'CERTIFICATE',
  'CA_CERTIFICATE',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type PublishFn = (topic: string, payload: Buffer) => void;

interface Stored {
  enabled: Partial<Record<EventType, boolean>>;
  creationDate: number;
  lastModifiedDate: number;
}

const KEY = 'eventConfigurations';

export interface RegistryEvents {
  enabled(type: EventType): boolean;
  /** Publish `payload` (eventType etc. added) when `type` is enabled. Never throws. */
  emit(type: EventType, topic: string, payload: Record<string, unknown>): void;
  describe(): {
    eventConfigurations: Record<string, { Enabled: boolean }>;
    creationDate: Date;
    lastModifiedDate: Date;
  };
  update(changes: Record<string, { Enabled?: boolean }>): Promise<void>;
  /** Re-read the stored configuration (changed by another node). */
  reload(): Promise<void>;
}

const EVENT_TYPE_NAMES: Record<string, string> = {
  THING: 'THING_EVENT',
  THING_GROUP: 'THING_GROUP_EVENT',
  THING_TYPE: 'THING_TYPE_EVENT',
  THING_GROUP_MEMBERSHIP: 'THING_GROUP_MEMBERSHIP_EVENT',
  THING_GROUP_HIERARCHY: 'THING_GROUP_HIERARCHY_EVENT',
  THING_TYPE_ASSOCIATION: 'THING_TYPE_ASSOCIATION_EVENT',
};

export async function createRegistryEvents(options: {
  store: RegistryStore;
  accountId: string;
  publish: PublishFn | undefined;
  onError?: (err: unknown) => void;
}): Promise<RegistryEvents> {
  const read = async (): Promise<Stored> => {
    const raw = await options.store.getSetting(KEY);
    const now = Date.now();
    return raw ? (JSON.parse(raw) as Stored) : { enabled: {}, creationDate: now, lastModifiedDate: now };
  };
  let state = await read();
  return {
    async reload() {
      state = await read();
    },
    enabled: (type) => state.enabled[type] === true,
    emit(type, topic, payload) {
      if (state.enabled[type] !== true || !options.publish) return;
      try {
        const body = {
          eventType: EVENT_TYPE_NAMES[type] ?? type,
          eventId: randomUUID().replace(/-/g, ''),
          timestamp: Date.now(),
          ...payload,
          accountId: options.accountId,
        };
        options.publish(topic, Buffer.from(JSON.stringify(body)));
      } catch (err) {
        options.onError?.(err);
      }
    },
    describe() {
      const eventConfigurations: Record<string, { Enabled: boolean }> = {};
      for (const t of EVENT_TYPES) eventConfigurations[t] = { Enabled: state.enabled[t] === true };
      return {
        eventConfigurations,
        creationDate: new Date(state.creationDate),
        lastModifiedDate: new Date(state.lastModifiedDate),
      };
    },
    async update(changes) {
      const enabled = { ...state.enabled };
      for (const [k, v] of Object.entries(changes)) enabled[k as EventType] = v.Enabled === true;
      const next: Stored = { enabled, creationDate: state.creationDate, lastModifiedDate: Date.now() };
      await options.store.setSetting(KEY, JSON.stringify(next));
      state = next;
    },
  };
}
