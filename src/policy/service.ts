import { randomUUID } from 'node:crypto';
import { E } from '../errors/index.js';
import { createLocalChannel, type ChangeChannel } from '../events/index.js';
import type { Database } from '../store/index.js';
import { compilePolicy, type ArnScope, type CompiledPolicy } from './evaluate.js';
import { openPolicyStore, type PolicyRecord, type PolicyStore, type PolicyVersionRecord } from './store.js';

/**
 * Named, versioned policies and their attachments (reference §3.3, §3.12, §9.1) with AWS semantics:
 * version "1" is created as the default, at most 5 versions, only the default version is enforced,
 * DeletePolicy refused while attached or while non-default versions exist.
 *
 * Everything authorization needs is held in memory, compiled (CONVENTIONS #7); every change that can alter
 * a decision bumps `generation` and notifies listeners, which re-bind live connections.
 * Every committed write publishes a change event (`policy`, `policyAttachment`); another process's events
 * make this one re-read the store. A deleted thing group loses its attachments here (a group made again
 * under the same name must not inherit them).
 */

export const MAX_VERSIONS = 5;
/** [U] AWS: 10 policies per target; AttachPolicy answers LimitExceeded (410) at the cap. */
export const MAX_POLICIES_PER_TARGET = 10;
/** The target whose policies authorize anonymous loopback clients in dev mode. */
export const ANONYMOUS_TARGET = 'anonymous';

const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

export interface PolicySummary {
  readonly policyName: string;
  readonly policyArn: string;
}

export interface PolicyView {
  readonly name: string;
  readonly arn: string;
  readonly defaultVersionId: string;
  readonly document: string;
  readonly createdAt: number;
  readonly lastModifiedAt: number;
  readonly generationId: string;
}

export interface PolicyVersionView {
  readonly versionId: string;
  readonly isDefaultVersion: boolean;
  readonly createdAt: number;
  readonly document: string;
}

export interface PolicyService {
  /** Bumped on every change that can alter an authorization decision. */
  readonly generation: number;
  onChange(listener: (generation: number) => void): () => void;
  policyArn(name: string): string;

  createPolicy(name: string, document: unknown): Promise<PolicyView & { versionId: string }>;
  getPolicy(name: string): PolicyView;
  listPolicies(options?: { marker?: string; pageSize?: number; ascending?: boolean }): {
    policies: PolicySummary[];
    nextMarker?: string;
  };
  deletePolicy(name: string): Promise<void>;
  createPolicyVersion(name: string, document: unknown, setAsDefault: boolean): Promise<PolicyVersionView>;
  listPolicyVersions(name: string): PolicyVersionView[];
  getPolicyVersion(name: string, versionId: string): PolicyVersionView & { policy: PolicyView };
  setDefaultPolicyVersion(name: string, versionId: string): Promise<void>;
  deletePolicyVersion(name: string, versionId: string): Promise<void>;

  attachPolicy(name: string, target: string): Promise<void>;
  detachPolicy(name: string, target: string): Promise<void>;
  /** Names of the policies attached directly to a target, in attachment order. */
  policiesOf(target: string): string[];
  targetsOf(name: string): string[];
  detachAll(target: string): Promise<void>;

  /** Hot-path helper: compiled default versions of the policies attached to any of `targets`, deduplicated. */
  policiesFor(targets: readonly string[]): CompiledPolicy[];
  /** Compiled default version of one policy. */
  compiled(name: string): CompiledPolicy | undefined;
  /** Reload everything from the store (another node changed it). */
  reload(): Promise<void>;
  /** Reload when the store's change counter moved since the last load (another process's change event). */
  syncFromStore(): Promise<boolean>;
  /** Stop listening to change events. */
  close(): void;
}

export type TargetKind = 'cert' | 'thinggroup' | 'anonymous' | 'cognito';

/** Classify an AttachPolicy target; throws InvalidRequest with what is accepted. */
export function parseTarget(target: unknown): { kind: TargetKind; name: string } {
  if (typeof target !== 'string' || !target) throw E.MissingParameter({ name: 'target' });
  if (target === ANONYMOUS_TARGET) return { kind: 'anonymous', name: target };
  const m = /^arn:aws:iot:[^:]*:\d*:(cert|thinggroup|thing)\/(.+)$/.exec(target);
  if (m?.[1] === 'cert' && /^[a-fA-F0-9]{64}$/.test(m[2]!))
    return { kind: 'cert', name: m[2]!.toLowerCase() };
  if (m?.[1] === 'thinggroup') return { kind: 'thinggroup', name: m[2]! };
  if (m?.[1] === 'thing') {
    throw E.PolicyTargetIsThing({ target });
  }
  if (/^[a-z]{2}-[a-z]+-\d:[0-9a-f-]{36}$/.test(target)) return { kind: 'cognito', name: target };
  throw E.PolicyTargetInvalid({ target, anonymous: ANONYMOUS_TARGET });
}

/** @example const policies = await openPolicyService({ db, scope: { region, accountId } }); */
export async function openPolicyService(options: {
  db: Database;
  scope: ArnScope;
  store?: PolicyStore;
  /** Change events: published after each write, and other processes' applied (default: in-process only). */
  events?: ChangeChannel;
}): Promise<PolicyService> {
  const store = options.store ?? (await openPolicyStore(options.db));
  const { scope } = options;
  const events = options.events ?? createLocalChannel();
  const policies = new Map<string, PolicyRecord>();
  const versions = new Map<string, Map<number, PolicyVersionRecord>>();
  const compiled = new Map<string, CompiledPolicy>();
  /** target -> policy names in attachment order */
  const byTarget = new Map<string, string[]>();
  const listeners = new Set<(g: number) => void>();
  let generation = 0;

  const arnOf = (name: string) => `arn:aws:iot:${scope.region}:${scope.accountId}:policy/${name}`;
  const bump = () => {
    generation++;
    for (const l of listeners) l(generation);
  };
  const compileDefault = (name: string) => {
    const p = policies.get(name);
    const v = p && versions.get(name)?.get(p.defaultVersionId);
    if (p && v) compiled.set(name, compilePolicy(name, String(v.versionId), v.document));
    else compiled.delete(name);
  };

  const changed = (name: string) => events.publish({ kind: 'policy', name });
  const attachmentChanged = (policy: string, target: string) =>
    events.publish({ kind: 'policyAttachment', policy, target });

  let loadedVersion = -1;
  async function load() {
    loadedVersion = await store.version();
    const all = await store.all();
    policies.clear();
    versions.clear();
    compiled.clear();
    byTarget.clear();
    for (const p of all.policies) policies.set(p.name, p);
    for (const v of all.versions) {
      let m = versions.get(v.name);
      if (!m) versions.set(v.name, (m = new Map()));
      m.set(v.versionId, v);
    }
    for (const p of all.policies) {
      try {
        compileDefault(p.name);
      } catch {
        compiled.delete(p.name); // a stored document that no longer validates grants nothing
      }
    }
    for (const t of all.targets) byTarget.set(t.target, [...(byTarget.get(t.target) ?? []), t.policy]);
  }
  await load();

  /**
   * One spelling per target: certificate ids in lowercase hex, and this platform's region and account in
   * certificate and thing-group ARNs (a policy attached with another account's ARN copied from AWS would
   * otherwise silently never apply).
   */
  function canonical(target: string): string {
    const t = parseTarget(target);
    if (t.kind === 'cert') return `arn:aws:iot:${scope.region}:${scope.accountId}:cert/${t.name}`;
    if (t.kind === 'thinggroup') return `arn:aws:iot:${scope.region}:${scope.accountId}:thinggroup/${t.name}`;
    return target;
  }
  function canonicalOrSelf(target: string): string {
    try {
      return canonical(target);
    } catch {
      return target;
    }
  }

  function need(name: string): PolicyRecord {
    if (!POLICY_NAME.test(name)) {
      throw E.PolicyName({ name: JSON.stringify(name) });
    }
    const p = policies.get(name);
    if (!p) throw E.PolicyNotFound({ policyName: name });
    return p;
  }
  function needVersion(name: string, versionId: string): PolicyVersionRecord {
    if (!/^\d+$/.test(versionId)) throw E.PolicyVersionId();
    const v = versions.get(name)?.get(Number(versionId));
    if (!v) throw E.PolicyVersionNotFound({ policyName: name, versionId });
    return v;
  }
  function documentText(document: unknown): string {
    if (typeof document !== 'string') {
      throw E.PolicyDocumentNotString();
    }
    compilePolicy('validate', '1', document); // throws MalformedPolicy with the JSON path
    return document;
  }
  function view(p: PolicyRecord): PolicyView {
    return {
      name: p.name,
      arn: arnOf(p.name),
      defaultVersionId: String(p.defaultVersionId),
      document: versions.get(p.name)?.get(p.defaultVersionId)?.document ?? '',
      createdAt: p.createdAt,
      lastModifiedAt: p.lastModifiedAt,
      generationId: p.generationId,
    };
  }

  const service: PolicyService = {
    get generation() {
      return generation;
    },
    onChange(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    policyArn: arnOf,

    async createPolicy(name, document) {
      if (!POLICY_NAME.test(name)) {
        throw E.PolicyName({ name: JSON.stringify(name) });
      }
      const text = documentText(document);
      const now = Date.now();
      const record: PolicyRecord = {
        name,
        defaultVersionId: 1,
        nextVersionId: 2,
        createdAt: now,
        lastModifiedAt: now,
        generationId: randomUUID(),
      };
      const version: PolicyVersionRecord = { name, versionId: 1, document: text, createdAt: now };
      if (policies.has(name) || !(await store.create(record, version))) {
        throw E.PolicyAlreadyExists({ policyName: name }, { resourceId: name, resourceArn: arnOf(name) });
      }
      policies.set(name, record);
      versions.set(name, new Map([[1, version]]));
      compileDefault(name);
      await changed(name);
      return { ...view(record), versionId: '1' };
    },

    getPolicy: (name) => view(need(name)),

    listPolicies(o = {}) {
      const size = Math.min(Math.max(o.pageSize ?? 250, 1), 250);
      const names = [...policies.keys()].sort();
      if (o.ascending === false) names.reverse();
      const after = o.marker ? Buffer.from(o.marker, 'base64').toString() : null;
      const start =
        after === null ? 0 : names.findIndex((n) => (o.ascending === false ? n < after : n > after));
      const slice = start < 0 ? [] : names.slice(start, start + size);
      const more = start >= 0 && start + size < names.length;
      return {
        policies: slice.map((n) => ({ policyName: n, policyArn: arnOf(n) })),
        ...(more ? { nextMarker: Buffer.from(slice[slice.length - 1]!).toString('base64') } : {}),
      };
    },

    async deletePolicy(name) {
      const p = need(name);
      const targets = service.targetsOf(name);
      if (targets.length) {
        throw E.PolicyAttached({ policyName: name, count: targets.length });
      }
      if ((versions.get(name)?.size ?? 0) > 1) {
        throw E.PolicyHasVersions({ policyName: name });
      }
      await store.delete(p.name);
      policies.delete(name);
      versions.delete(name);
      compiled.delete(name);
      bump();
      await changed(name);
    },

    async createPolicyVersion(name, document, setAsDefault) {
      const p = need(name);
      const text = documentText(document);
      const existing = versions.get(name)!;
      if (existing.size >= MAX_VERSIONS) {
        throw E.PolicyVersionsLimit({ policyName: name, max: MAX_VERSIONS });
      }
      const now = Date.now();
      const version: PolicyVersionRecord = {
        name,
        versionId: p.nextVersionId,
        document: text,
        createdAt: now,
      };
      const next: PolicyRecord = {
        ...p,
        nextVersionId: p.nextVersionId + 1,
        defaultVersionId: setAsDefault ? version.versionId : p.defaultVersionId,
        lastModifiedAt: now,
        generationId: randomUUID(),
      };
      await store.addVersion(version, next);
      existing.set(version.versionId, version);
      policies.set(name, next);
      if (setAsDefault) {
        compileDefault(name);
        bump();
      }
      await changed(name);
      return {
        versionId: String(version.versionId),
        isDefaultVersion: setAsDefault,
        createdAt: now,
        document: text,
      };
    },

    listPolicyVersions(name) {
      const p = need(name);
      return [...versions.get(name)!.values()]
        .sort((a, b) => b.versionId - a.versionId)
        .map((v) => ({
          versionId: String(v.versionId),
          isDefaultVersion: v.versionId === p.defaultVersionId,
          createdAt: v.createdAt,
          document: v.document,
        }));
    },

    getPolicyVersion(name, versionId) {
      const p = need(name);
      const v = needVersion(name, versionId);
      return {
        versionId: String(v.versionId),
        isDefaultVersion: v.versionId === p.defaultVersionId,
        createdAt: v.createdAt,
        document: v.document,
        policy: view(p),
      };
    },

    async setDefaultPolicyVersion(name, versionId) {
      const p = need(name);
      const v = needVersion(name, versionId);
      if (v.versionId === p.defaultVersionId) return;
      const now = Date.now();
      const next = { ...p, defaultVersionId: v.versionId, lastModifiedAt: now, generationId: randomUUID() };
      await store.setDefault(name, v.versionId, now, next.generationId);
      policies.set(name, next);
      compileDefault(name);
      bump();
      await changed(name);
    },

    async deletePolicyVersion(name, versionId) {
      const p = need(name);
      const v = needVersion(name, versionId);
      if (v.versionId === p.defaultVersionId) {
        throw E.PolicyDefaultVersion({ versionId, policyName: name });
      }
      await store.deleteVersion(name, v.versionId);
      versions.get(name)!.delete(v.versionId);
      await changed(name);
    },

    async attachPolicy(name, target) {
      need(name);
      const key = canonical(target);
      const current = byTarget.get(key) ?? [];
      if (current.includes(name)) return;
      if (current.length >= MAX_POLICIES_PER_TARGET) {
        throw E.PolicyTargetLimit({ target, max: MAX_POLICIES_PER_TARGET });
      }
      await store.attach(name, key, Date.now());
      byTarget.set(key, [...current, name]);
      bump();
      await attachmentChanged(name, key);
    },

    async detachPolicy(name, target) {
      need(name);
      const key = canonical(target);
      if (!(await store.detach(name, key))) return;
      const rest = (byTarget.get(key) ?? []).filter((n) => n !== name);
      if (rest.length) byTarget.set(key, rest);
      else byTarget.delete(key);
      bump();
      await attachmentChanged(name, key);
    },

    policiesOf: (target) => [...(byTarget.get(canonicalOrSelf(target)) ?? [])],

    targetsOf(name) {
      const out: string[] = [];
      for (const [target, names] of byTarget) if (names.includes(name)) out.push(target);
      return out;
    },

    async detachAll(target) {
      for (const name of service.policiesOf(target)) await service.detachPolicy(name, target);
    },

    policiesFor(targets) {
      const seen = new Set<string>();
      const out: CompiledPolicy[] = [];
      for (const t of targets) {
        for (const name of byTarget.get(t) ?? []) {
          if (seen.has(name)) continue;
          seen.add(name);
          const c = compiled.get(name);
          if (c) out.push(c);
        }
      }
      return out;
    },

    compiled: (name) => compiled.get(name),

    async reload() {
      await load();
      bump();
    },

    async syncFromStore() {
      if ((await store.version()) === loadedVersion) return false;
      await load();
      bump();
      return true;
    },

    close() {
      for (const off of subscriptions) off();
    },
  };

  /** Another process's changes: re-read once per burst (a reload already running picks up what it can). */
  let syncing: Promise<void> | null = null;
  let again = false;
  const sync = (): Promise<void> => {
    if (syncing) {
      again = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        again = false;
        await service.syncFromStore();
      } while (again);
    })().finally(() => (syncing = null));
    return syncing;
  };
  const groupPrefix = `arn:aws:iot:${scope.region}:${scope.accountId}:thinggroup/`;
  const subscriptions = [
    events.subscribe(['policy', 'policyAttachment'], (_e, origin) =>
      origin === 'remote' ? sync() : undefined,
    ),
    events.subscribe(['thingGroup'], (e, origin) => {
      if (e.kind === 'resync') return undefined;
      // The process that deleted the group detaches its policies (once, not once per process).
      if (origin === 'local' && e.deleted) return service.detachAll(groupPrefix + e.name);
      return undefined;
    }),
  ];
  return service;
}
