import type { ChangeChannel, PublishedEvent } from '../events/index.js';
import type { RegistryStore } from './store.js';

/**
 * The registry's change events, published after each committed store write (a mutation that changed
 * nothing publishes nothing).
 *
 * Ordering: an event is published on the next turn (`setImmediate`), after the operation that made the
 * write has updated the in-memory fleet index and dynamic groups, so that subscribers in this process
 * (live authorization) read the new state. `settled()` resolves when every event published so far has been
 * applied here and handed to the other processes; the registry's API operations await it before answering.
 */
export interface RegistryChanges {
  readonly store: RegistryStore;
  settled(): Promise<void>;
}

export function withChangeEvents(
  base: RegistryStore,
  events: ChangeChannel,
  onError: (err: unknown) => void,
): RegistryChanges {
  const pending = new Set<Promise<void>>();
  const publish = (event: PublishedEvent) => {
    const p: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => events.publish(event))
      .catch(onError)
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  /** Wrap a mutation: publish `event(...args)` when it changed something (false means it did not). */
  const after =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>, event: (...a: A) => PublishedEvent) =>
    async (...a: A): Promise<R> => {
      const r = await fn(...a);
      if (r !== false) publish(event(...a));
      return r;
    };
  const store: RegistryStore = {
    ...base,
    insertThing: after(base.insertThing.bind(base), (t) => ({ kind: 'thing', name: t.name })),
    updateThing: after(base.updateThing.bind(base), (t) => ({ kind: 'thing', name: t.name })),
    deleteThing: after(base.deleteThing.bind(base), (name) => ({ kind: 'thing', name, deleted: true })),
    insertType: after(base.insertType.bind(base), (t) => ({ kind: 'thingType', name: t.name })),
    updateType: after(base.updateType.bind(base), (t) => ({ kind: 'thingType', name: t.name })),
    deleteType: after(base.deleteType.bind(base), (name) => ({ kind: 'thingType', name, deleted: true })),
    insertGroup: after(base.insertGroup.bind(base), (g) => ({
      kind: 'thingGroup',
      name: g.name,
      dynamic: !!g.dynamic,
    })),
    updateGroup: after(base.updateGroup.bind(base), (g) => ({
      kind: 'thingGroup',
      name: g.name,
      dynamic: !!g.dynamic,
    })),
    async deleteGroup(name) {
      // Whether it was dynamic matters to subscribers (a dynamic group's members are any things).
      const g = await base.getGroup(name);
      const deleted = await base.deleteGroup(name);
      if (deleted) publish({ kind: 'thingGroup', name, dynamic: !!g?.dynamic, deleted: true });
      return deleted;
    },
    addMember: after(base.addMember.bind(base), (group, thing) => ({ kind: 'membership', thing, group })),
    removeMember: after(base.removeMember.bind(base), (group, thing) => ({
      kind: 'membership',
      thing,
      group,
    })),
    attachPrincipal: after(base.attachPrincipal.bind(base), (thing, principal) => ({
      kind: 'principal',
      thing,
      principal,
    })),
    detachPrincipal: after(base.detachPrincipal.bind(base), (thing, principal) => ({
      kind: 'principal',
      thing,
      principal,
    })),
    setSetting: after(base.setSetting.bind(base), (key) => ({ kind: 'registrySetting', key })),
  };
  return {
    store,
    async settled() {
      while (pending.size) await Promise.all([...pending]);
    },
  };
}
