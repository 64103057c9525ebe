import { createHash, randomUUID } from 'node:crypto';
import { E, isThingsteadError } from '../errors/index.js';
import { certificateIdOf, type CertificateService } from '../identity/index.js';
import type { PolicyService } from '../policy/index.js';
import type { ThingRegistry } from '../registry/index.js';
import type { FlowsStore } from './flows-store.js';
import type { AttemptTrace } from './trace.js';
import type { OverrideAction, ProvisioningPlan } from './template.js';

/**
 * Apply a provisioning plan (the template's resources, evaluated) so that it happens whole or not at all.
 *
 * The registry, identity and policy contexts keep their own tables and in-memory state (the fleet index,
 * compiled policies, the certificate cache) and publish change events after each write, so one SQL
 * transaction across them would have to bypass their services and leave their memory wrong after a
 * rollback. Instead the apply is a saga with a durable journal in this context's own table:
 *
 * 1. Read the current state (the thing, its groups, the certificate, what is already attached) and check
 *    everything that can be checked without writing (type, groups, billing group, policies by name,
 *    OverrideSettings FAIL). Most refusals end here, with nothing written.
 * 2. Write one journal row listing the undo of every write about to be made (each undo is idempotent and
 *    harmless when its write never happened), leased for `leaseMs`.
 * 3. Make the writes through the owning services, in an order that keeps a half-made state useless:
 *    certificate registered (PENDING_ACTIVATION) -> policies created and attached -> thing created or
 *    updated, groups, billing group -> certificate attached to the thing -> certificate status (the
 *    COMMIT POINT: only now can the device connect) -> ownership token spent -> journal row deleted.
 * 4. On a failure in step 3 the undo runs at once, in reverse order, and the journal row goes.
 * 5. After a crash, `recover` (run at start and by the sweep, once per cluster) takes journal rows whose
 *    lease lapsed: if the commit point was passed (the certificate has its target status) the attempt is
 *    finished forward (token spent); otherwise its undo runs. So no thing is left without its certificate
 *    nor a certificate without its thing.
 * Without a certificate status change (a template without a certificate, or one already in its status)
 * the journal row's deletion is the commit point.
 */

export interface ApplyPorts {
  readonly registry: Pick<
    ThingRegistry,
    | 'store'
    | 'createThing'
    | 'updateThing'
    | 'deleteThing'
    | 'addThingToThingGroup'
    | 'removeThingFromThingGroup'
    | 'attachThingPrincipal'
    | 'detachThingPrincipal'
    | 'setBillingGroup'
    | 'arn'
  >;
  readonly certificates: Pick<
    CertificateService,
    'describe' | 'register' | 'updateStatus' | 'delete' | 'certificateArn'
  >;
  readonly policies: Pick<
    PolicyService,
    | 'getPolicy'
    | 'createPolicy'
    | 'attachPolicy'
    | 'detachPolicy'
    | 'deletePolicy'
    | 'policiesOf'
    | 'policyArn'
  >;
}

/** One undo step, as stored in the journal. */
export type UndoAction =
  | { readonly op: 'deleteThing'; readonly thingName: string }
  | {
      readonly op: 'restoreThing';
      readonly thingName: string;
      readonly attributes: Record<string, string>;
      readonly thingTypeName: string | null;
    }
  | { readonly op: 'removeFromGroup'; readonly thingName: string; readonly group: string }
  | { readonly op: 'addToGroup'; readonly thingName: string; readonly group: string }
  | { readonly op: 'restoreBillingGroup'; readonly thingName: string; readonly billingGroup: string | null }
  | { readonly op: 'detachPrincipal'; readonly thingName: string; readonly principal: string }
  | { readonly op: 'detachPolicy'; readonly policyName: string; readonly target: string }
  | { readonly op: 'deletePolicy'; readonly policyName: string }
  | { readonly op: 'deleteCertificate'; readonly certificateId: string }
  | { readonly op: 'deleteTaskLine'; readonly taskId: string; readonly line: number };

/** The journal row's body. */
interface JournalBody {
  readonly undo: UndoAction[];
  /** The commit point: once the certificate has this status the attempt is kept. */
  readonly commit?: { readonly certificateId: string; readonly status: string };
  /** The ownership token to spend (roll forward) or release (roll back). */
  readonly tokenHash?: string;
}

export interface AppliedResources {
  readonly thingName?: string;
  readonly certificateId?: string;
  readonly certificatePem?: string;
  /** Logical id -> ARN (RegisterThing's resourceArns). */
  readonly resourceArns: Record<string, string>;
}

/** A refusal raised by the apply: the reason code and the error to answer with. */
export class ApplyRefusal extends Error {
  constructor(
    readonly reason: string,
    readonly error: Error,
  ) {
    super(error.message);
  }
}

export interface Applier {
  apply(input: {
    plan: ProvisioningPlan;
    flow: string;
    trace: AttemptTrace;
    /** The certificate the request came with (MQTT token, JITP), when the plan refers to it. */
    certificateId?: string | undefined;
    /** Spent at the commit point; released on a refusal (by the caller). */
    tokenHash?: string | undefined;
    onTokenSpent?: () => Promise<void>;
    /**
     * Bulk: the line's result. When the line signs a CSR its result is stored as a journaled write just
     * before the commit point (undone with the rest), so after a crash the result is recorded exactly when
     * the registration was kept, and a resumed task never signs that CSR again. Other lines re-run
     * idempotently and leave the result to the caller (`resultRecorded` false).
     */
    result?: { taskId: string; line: number; body: (applied: AppliedResources) => string } | undefined;
  }): Promise<AppliedResources & { resultRecorded?: boolean }>;
  /** Open journal entries of `flow` not applying in this process (another's, or a dead one's not yet lapsed). */
  pendingElsewhere(flow: string): Promise<number>;
  /** Finish or undo attempts whose process died mid-apply (lease lapsed). Returns how many were taken. */
  recover(): Promise<{ rolledBack: number; rolledForward: number }>;
}

const isNotFound = (err: unknown) => isThingsteadError(err) && err.code === 'ResourceNotFound';

/** Policy created from a PolicyDocument: named by the SHA-256 of its text, shared by every device given it. */
export const documentPolicyName = (document: string) => createHash('sha256').update(document).digest('hex');

export function createApplier(options: {
  ports: ApplyPorts;
  store: FlowsStore;
  leaseMs: number;
  spendToken: (tokenHash: string) => Promise<void>;
  releaseToken: (tokenHash: string) => Promise<void>;
  /** Sign a CSR with the platform CA (identity's signCsr; verifies the CSR's signature). */
  signCsr: (csrPem: string) => Promise<{ certificatePem: string }>;
  onUndoError?: (err: unknown, action: UndoAction) => void;
  /** Tests: called after each write step (by name), to inject a failure or a crash between steps. */
  afterStep?: (step: string) => void | Promise<void>;
  now?: () => number;
}): Applier {
  const { ports, store } = options;
  const { registry, certificates, policies } = ports;
  const now = options.now ?? Date.now;
  const afterStep = options.afterStep ?? (() => undefined);
  /** Attempts applying in this process: recovery never touches them, whatever their lease says. */
  const inFlight = new Set<string>();

  async function undoOne(a: UndoAction): Promise<void> {
    try {
      switch (a.op) {
        case 'deleteThing':
          await registry.deleteThing({ thingName: a.thingName });
          return;
        case 'restoreThing':
          await registry.updateThing({
            thingName: a.thingName,
            attributePayload: { attributes: await withRemovals(a.thingName, a.attributes), merge: true },
            ...(a.thingTypeName !== null ? { thingTypeName: a.thingTypeName } : { removeThingType: true }),
          });
          return;
        case 'removeFromGroup':
          await registry.removeThingFromThingGroup({ thingName: a.thingName, thingGroupName: a.group });
          return;
        case 'addToGroup':
          await registry.addThingToThingGroup({ thingName: a.thingName, thingGroupName: a.group });
          return;
        case 'restoreBillingGroup': {
          const current = (await registry.store.getThing(a.thingName))?.billingGroup ?? null;
          if (current === a.billingGroup) return;
          if (current !== null)
            await registry.setBillingGroup({ billingGroupName: current, thingName: a.thingName }, false);
          if (a.billingGroup !== null)
            await registry.setBillingGroup(
              { billingGroupName: a.billingGroup, thingName: a.thingName },
              true,
            );
          return;
        }
        case 'detachPrincipal':
          await registry.detachThingPrincipal({ thingName: a.thingName, principal: a.principal });
          return;
        case 'detachPolicy':
          await policies.detachPolicy(a.policyName, a.target);
          return;
        case 'deletePolicy':
          await policies.deletePolicy(a.policyName);
          return;
        case 'deleteTaskLine':
          await store.deleteTaskLine(a.taskId, a.line);
          return;
        case 'deleteCertificate': {
          const record = await certificates.describe(a.certificateId);
          if (record.status === 'ACTIVE') await certificates.updateStatus(a.certificateId, 'INACTIVE');
          await certificates.delete(a.certificateId, { forceDelete: true });
          return;
        }
      }
    } catch (err) {
      if (isNotFound(err)) return; // already gone (or never made)
      // A shared policy still attached elsewhere is not ours to delete.
      if (a.op === 'deletePolicy' && isThingsteadError(err) && err.code === 'DeleteConflict') return;
      options.onUndoError?.(err, a);
    }
  }

  /** Attributes to restore, with the ones added since set to "" (merge: "" removes, reference §3.8). */
  async function withRemovals(thingName: string, previous: Record<string, string>) {
    const current = (await registry.store.getThing(thingName))?.attributes ?? {};
    const out: Record<string, string> = { ...previous };
    for (const k of Object.keys(current)) if (!(k in previous)) out[k] = '';
    return out;
  }

  async function undoAll(actions: readonly UndoAction[], trace?: AttemptTrace) {
    for (const a of [...actions].reverse()) {
      await undoOne(a);
      trace?.step('undo', { ...a });
    }
  }

  const overrideOf = (action: OverrideAction | undefined): OverrideAction => action ?? 'DO_NOTHING';

  return {
    async apply({ plan, flow, trace, certificateId: given, tokenHash, onTokenSpent, result }) {
      // ---- 1. read and check, nothing written yet -------------------------------------------------
      const undo: UndoAction[] = [];
      const writes: Array<{ step: string; run: () => Promise<void>; undo?: UndoAction[] }> = [];
      const resourceArns: Record<string, string> = {};
      let commit: JournalBody['commit'];

      const cert = plan.certificate;
      // A request that comes with its certificate (MQTT token, JITP) provisions that one: a template may
      // not point it at another certificate (a device parameter naming someone else's certificate).
      if (
        given !== undefined &&
        cert &&
        ((cert.certificateId ?? given) !== given || cert.certificatePem !== undefined)
      )
        throw new ApplyRefusal(
          'certificate_mismatch',
          E.ProvisioningCertificateMismatch({ logicalId: cert.logicalId }),
        );
      let certificateId: string | undefined = cert?.certificateId ?? given;
      let certificatePem: string | undefined;
      let signed = false;
      if (cert) {
        let record: { status: string; certificatePem: string } | undefined;
        let pemToRegister = cert.certificatePem;
        if (
          pemToRegister === undefined &&
          cert.certificateSigningRequest !== undefined &&
          certificateId === undefined
        ) {
          // A CSR (bulk registration): signed by the platform CA now (no write), registered below.
          try {
            pemToRegister = (await options.signCsr(cert.certificateSigningRequest)).certificatePem;
          } catch (err) {
            throw new ApplyRefusal('csr_invalid', err as Error);
          }
          signed = true;
          trace.step('apply.certificate.sign', {});
        }
        if (pemToRegister !== undefined && certificateId === undefined) {
          // RegisterThing with a device certificate: registered as a write of its own (journaled, so a
          // crash leaves no stray certificate), PENDING_ACTIVATION until the commit point.
          try {
            certificateId = certificateIdOf(pemToRegister);
          } catch (err) {
            throw new ApplyRefusal(
              'certificate_invalid',
              E.CertificateUnparsable({ what: 'CertificatePem', reason: (err as Error).message }),
            );
          }
          const known = await certificates.describe(certificateId).catch(() => undefined);
          if (!known) {
            const pem = pemToRegister;
            const caPem = cert.caCertificatePem;
            const id = certificateId;
            writes.push({
              step: 'apply.certificate.register',
              run: async () => {
                try {
                  await certificates.register({
                    certificatePem: pem,
                    ...(caPem !== undefined ? { caCertificatePem: caPem } : {}),
                    status: 'PENDING_ACTIVATION',
                  });
                } catch (err) {
                  if (!(isThingsteadError(err) && err.code === 'ResourceAlreadyExists')) throw err;
                }
              },
              undo: [{ op: 'deleteCertificate', certificateId: id }],
            });
            record = { status: 'PENDING_ACTIVATION', certificatePem: pem };
          }
        }
        if (certificateId === undefined)
          throw new ApplyRefusal(
            'certificate_missing',
            E.ProvisioningNoCertificate({ logicalId: cert.logicalId }),
          );
        if (!record) {
          try {
            record = await certificates.describe(certificateId);
          } catch (err) {
            throw new ApplyRefusal(
              isNotFound(err) ? 'certificate_not_found' : 'certificate_invalid',
              err as Error,
            );
          }
        }
        certificatePem = record.certificatePem;
        resourceArns[cert.logicalId] = certificates.certificateArn(certificateId);
        const target =
          cert.status ??
          (record.status === 'PENDING_ACTIVATION' ? 'ACTIVE' : (record.status as 'ACTIVE' | 'INACTIVE'));
        if (record.status !== target) {
          const pending = record.status === 'PENDING_ACTIVATION';
          const override = pending ? 'REPLACE' : (cert.overrideSettings.Status ?? 'DO_NOTHING');
          if (override === 'FAIL')
            throw new ApplyRefusal(
              'override_fail',
              E.ProvisioningOverrideFail({ resource: 'certificate', setting: 'Status', id: certificateId }),
            );
          if (override === 'REPLACE' && (target === 'ACTIVE' || target === 'INACTIVE')) {
            if (record.status === 'REVOKED')
              throw new ApplyRefusal('certificate_revoked', E.CertificateRevoked({ certificateId }));
            commit = { certificateId, status: target };
          }
        }
      }
      const certArn = certificateId !== undefined ? certificates.certificateArn(certificateId) : undefined;

      // Policies: by name (must exist) or by document (created once, named by its hash).
      const attachedBefore = new Set(certArn ? policies.policiesOf(certArn) : []);
      for (const p of plan.policies) {
        let name = p.policyName;
        if (name === undefined && p.policyDocument !== undefined) {
          name = documentPolicyName(p.policyDocument);
          let exists = true;
          try {
            policies.getPolicy(name);
          } catch {
            exists = false;
          }
          if (!exists) {
            const policyName = name;
            const document = p.policyDocument;
            writes.push({
              step: 'apply.policy.create',
              run: async () => {
                try {
                  await policies.createPolicy(policyName, document);
                } catch (err) {
                  if (!(isThingsteadError(err) && err.code === 'ResourceAlreadyExists')) throw err;
                }
              },
              undo: [{ op: 'deletePolicy', policyName }],
            });
          }
        } else if (name !== undefined) {
          try {
            policies.getPolicy(name);
          } catch (err) {
            throw new ApplyRefusal('policy_not_found', err as Error);
          }
        }
        if (name === undefined) continue;
        resourceArns[p.logicalId] = policies.policyArn(name);
        if (certArn && !attachedBefore.has(name)) {
          const policyName = name;
          writes.push({
            step: 'apply.policy.attach',
            run: () => policies.attachPolicy(policyName, certArn),
            undo: [{ op: 'detachPolicy', policyName, target: certArn }],
          });
        }
      }

      // The thing: created, or updated as OverrideSettings say.
      const thing = plan.thing;
      if (thing) {
        const name = thing.thingName;
        const existing = await registry.store.getThing(name);
        const currentGroups = existing ? await registry.store.groupsOfThing(name) : [];
        for (const g of thing.thingGroups ?? [])
          if (!(await registry.store.getGroup(g)))
            throw new ApplyRefusal('thing_group_not_found', E.ThingGroupNotFound({ thingGroupName: g }));
        if (thing.billingGroup !== undefined && !(await registry.store.getBillingGroup(thing.billingGroup)))
          throw new ApplyRefusal(
            'billing_group_not_found',
            E.BillingGroupNotFound({ billingGroupName: thing.billingGroup }),
          );
        if (thing.thingTypeName !== undefined) {
          const type = await registry.store.getType(thing.thingTypeName);
          if (!type)
            throw new ApplyRefusal(
              'thing_type_not_found',
              E.ThingTypeNotFound({ thingTypeName: thing.thingTypeName }),
            );
        }
        resourceArns[thing.logicalId] = registry.arn('thing', name);
        if (!existing) {
          writes.push({
            step: 'apply.thing.create',
            run: async () => {
              await registry.createThing({
                thingName: name,
                ...(thing.thingTypeName !== undefined ? { thingTypeName: thing.thingTypeName } : {}),
                attributePayload: { attributes: thing.attributes ?? {} },
              });
            },
            undo: [{ op: 'deleteThing', thingName: name }],
          });
          for (const g of thing.thingGroups ?? [])
            writes.push({
              step: 'apply.thing.group',
              run: () =>
                registry.addThingToThingGroup({ thingName: name, thingGroupName: g }).then(() => undefined),
              undo: [{ op: 'removeFromGroup', thingName: name, group: g }],
            });
          if (thing.billingGroup !== undefined) {
            const billingGroupName = thing.billingGroup;
            writes.push({
              step: 'apply.thing.billingGroup',
              run: () =>
                registry.setBillingGroup({ billingGroupName, thingName: name }, true).then(() => undefined),
            });
          }
        } else {
          const s = thing.overrideSettings;
          const fail = (setting: string) =>
            new ApplyRefusal(
              'override_fail',
              E.ProvisioningOverrideFail({ resource: 'thing', setting, id: name }),
            );
          const attrAction = overrideOf(s.AttributePayload);
          const typeAction = overrideOf(s.ThingTypeName);
          const groupAction = overrideOf(s.ThingGroups);
          const wantAttrs = thing.attributes ?? {};
          const attrsDiffer =
            thing.attributes !== undefined &&
            JSON.stringify(sortKeys(existing.attributes)) !==
              JSON.stringify(
                sortKeys(attrAction === 'MERGE' ? { ...existing.attributes, ...wantAttrs } : wantAttrs),
              );
          const typeDiffers =
            thing.thingTypeName !== undefined && thing.thingTypeName !== (existing.typeName ?? undefined);
          const addGroups = (thing.thingGroups ?? []).filter((g) => !currentGroups.includes(g));
          const dropGroups =
            groupAction === 'REPLACE' && thing.thingGroups !== undefined
              ? currentGroups.filter((g) => !thing.thingGroups!.includes(g))
              : [];
          if (attrsDiffer && attrAction === 'FAIL') throw fail('AttributePayload');
          if (typeDiffers && typeAction === 'FAIL') throw fail('ThingTypeName');
          if ((addGroups.length || dropGroups.length) && groupAction === 'FAIL') throw fail('ThingGroups');
          const changeAttrs = attrsDiffer && (attrAction === 'REPLACE' || attrAction === 'MERGE');
          const changeType = typeDiffers && typeAction === 'REPLACE';
          if (changeAttrs || changeType) {
            const attributes =
              attrAction === 'MERGE'
                ? wantAttrs
                : {
                    ...Object.fromEntries(Object.keys(existing.attributes).map((k) => [k, ''])),
                    ...wantAttrs,
                  };
            writes.push({
              step: 'apply.thing.update',
              run: async () => {
                await registry.updateThing({
                  thingName: name,
                  ...(changeAttrs ? { attributePayload: { attributes, merge: true } } : {}),
                  ...(changeType ? { thingTypeName: thing.thingTypeName } : {}),
                });
              },
              undo: [
                {
                  op: 'restoreThing',
                  thingName: name,
                  attributes: existing.attributes,
                  thingTypeName: existing.typeName ?? null,
                },
              ],
            });
          }
          if (groupAction === 'REPLACE' || groupAction === 'MERGE') {
            for (const g of addGroups)
              writes.push({
                step: 'apply.thing.group',
                run: () =>
                  registry.addThingToThingGroup({ thingName: name, thingGroupName: g }).then(() => undefined),
                undo: [{ op: 'removeFromGroup', thingName: name, group: g }],
              });
            for (const g of dropGroups)
              writes.push({
                step: 'apply.thing.ungroup',
                run: () =>
                  registry
                    .removeThingFromThingGroup({ thingName: name, thingGroupName: g })
                    .then(() => undefined),
                undo: [{ op: 'addToGroup', thingName: name, group: g }],
              });
          }
          if (thing.billingGroup !== undefined && existing.billingGroup !== thing.billingGroup) {
            const billingGroupName = thing.billingGroup;
            writes.push({
              step: 'apply.thing.billingGroup',
              run: async () => {
                if (existing.billingGroup)
                  await registry.setBillingGroup(
                    { billingGroupName: existing.billingGroup, thingName: name },
                    false,
                  );
                await registry.setBillingGroup({ billingGroupName, thingName: name }, true);
              },
              undo: [
                { op: 'restoreBillingGroup', thingName: name, billingGroup: existing.billingGroup ?? null },
              ],
            });
          }
        }
        if (certArn) {
          const attached = await registry.store.thingsOfPrincipal(certArn, { limit: 1000 });
          if (!attached.some((a) => a.thing === name))
            writes.push({
              step: 'apply.thing.principal',
              run: () =>
                registry.attachThingPrincipal({ thingName: name, principal: certArn }).then(() => undefined),
              undo: [{ op: 'detachPrincipal', thingName: name, principal: certArn }],
            });
        }
      }
      const applied = (): AppliedResources => ({
        ...(thing ? { thingName: thing.thingName } : {}),
        ...(certificateId !== undefined ? { certificateId } : {}),
        ...(certificatePem !== undefined ? { certificatePem } : {}),
        resourceArns,
      });
      // A signed CSR's result goes in before the commit point (see `result`); only with a commit point, so
      // that recovery keeps it exactly when it keeps the certificate.
      const recordResult = signed && commit !== undefined && result !== undefined;
      if (recordResult) {
        const { taskId, line } = result;
        const body = result.body(applied());
        writes.push({
          step: 'apply.result',
          run: () => store.insertTaskLines(taskId, [{ line, ok: true, body }]),
          undo: [{ op: 'deleteTaskLine', taskId, line }],
        });
      }
      if (commit) {
        const c = commit;
        writes.push({
          step: 'apply.certificate.status',
          run: () => certificates.updateStatus(c.certificateId, c.status),
        });
      }

      // ---- 2. the journal --------------------------------------------------------------------------
      for (const w of writes) undo.push(...(w.undo ?? []));
      const attemptId = trace.attemptId;
      inFlight.add(attemptId);
      try {
        return await write();
      } finally {
        inFlight.delete(attemptId);
      }

      async function write(): Promise<AppliedResources> {
        const journaled = undo.length > 0 || commit !== undefined || tokenHash !== undefined;
        if (journaled) {
          const body: JournalBody = {
            undo,
            ...(commit ? { commit } : {}),
            ...(tokenHash ? { tokenHash } : {}),
          };
          await store.insertJournal(
            { attemptId, flow, createdAt: now(), undo: JSON.stringify(body) },
            now() + options.leaseMs,
          );
        }

        // ---- 3. the writes ---------------------------------------------------------------------------
        const done: UndoAction[] = [];
        try {
          for (const w of writes) {
            await w.run();
            done.push(...(w.undo ?? []));
            trace.step(w.step, stepDetail(w));
            await afterStep(w.step);
          }
        } catch (err) {
          trace.step('apply.failed', { error: (err as Error).message }, false);
          await undoAll(done, trace);
          if (journaled) await store.deleteJournal(attemptId);
          throw new ApplyRefusal(
            isThingsteadError(err) ? 'apply_failed' : 'internal',
            isThingsteadError(err) ? err : E.ProvisioningInternal(),
          );
        }
        // Past the commit point: spend the token, then forget the journal.
        if (tokenHash) {
          await options.spendToken(tokenHash);
          await onTokenSpent?.();
        }
        if (journaled) await store.deleteJournal(attemptId);
        return { ...applied(), ...(recordResult ? { resultRecorded: true } : {}) };
      }
    },

    async pendingElsewhere(flow) {
      return (await store.journalIds()).filter((j) => j.flow === flow && !inFlight.has(j.attemptId)).length;
    },

    async recover() {
      let rolledBack = 0;
      let rolledForward = 0;
      const rows = await store.takeLapsedJournal(now(), now() + options.leaseMs, 100);
      for (const row of rows) {
        if (inFlight.has(row.attemptId)) continue;
        let body: JournalBody;
        try {
          body = JSON.parse(row.undo) as JournalBody;
        } catch {
          await store.deleteJournal(row.attemptId);
          continue;
        }
        let committed = false;
        if (body.commit) {
          const record = await certificates.describe(body.commit.certificateId).catch(() => undefined);
          committed = record?.status === body.commit.status;
        }
        if (committed) {
          if (body.tokenHash) await options.spendToken(body.tokenHash);
          rolledForward++;
        } else {
          await undoAll(body.undo);
          if (body.tokenHash) await options.releaseToken(body.tokenHash);
          rolledBack++;
        }
        await store.deleteJournal(row.attemptId);
      }
      return { rolledBack, rolledForward };
    },
  };
}

function stepDetail(w: { step: string; undo?: UndoAction[] }): Record<string, unknown> {
  const u = w.undo?.[0];
  if (!u) return {};
  const { op: _op, ...rest } = u;
  return rest;
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A fresh attempt id where no trace gives one. */
export const newAttemptId = () => randomUUID();
