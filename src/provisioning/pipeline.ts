import { E, isThingsteadError, type ThingsteadError } from '../errors/index.js';
import { ApplyRefusal, type Applier, type AppliedResources } from './apply.js';
import { callHook } from './hook.js';
import { evaluateTemplate, parseTemplate, type CertificateFacts, type ParsedTemplate } from './template.js';
import type { OwnershipTokens } from './tokens.js';
import { hashToken } from './tokens.js';
import type { AttemptTrace, ProvisioningFlow, TraceLog } from './trace.js';

/**
 * The provisioning pipeline: the one function every flow goes through (MQTT RegisterThing, the
 * RegisterThing API, JITP, each bulk line):
 *
 *   ownership token (MQTT) -> template lookup (by name, or an inline body) -> pre-provisioning hook (named
 *   fleet templates that have one) -> evaluate the template -> apply the plan atomically (apply.ts)
 *
 * Every attempt is traced (trace.ts) step by step and ends accepted, or refused with a `Refusal`: a stable
 * reason code, the error for the HTTP API, and the `{statusCode, errorCode, errorMessage}` an MQTT device
 * is sent on `/rejected` (reference §8.4). Never throws for a refusal; an unexpected failure becomes
 * reason `internal` (500) and is logged by the caller.
 */

/** A stored provisioning template as the pipeline reads it (templates-store.ts). */
export interface StoredTemplate {
  readonly name: string;
  readonly arn: string;
  readonly type: 'FLEET_PROVISIONING' | 'JITP';
  readonly enabled: boolean;
  readonly body: string;
  readonly parsed: ParsedTemplate;
  readonly preProvisioningHook?: { readonly targetArn: string; readonly payloadVersion?: string } | undefined;
  readonly provisioningRoleArn?: string | undefined;
}

export interface TemplateSource {
  getTemplate(name: string): Promise<StoredTemplate | undefined> | StoredTemplate | undefined;
}

export interface Refusal {
  /** Stable code: metrics label, trace field. */
  readonly reason: string;
  /** For the HTTP API (RegisterThing). */
  readonly error: ThingsteadError;
  /** For MQTT `/rejected` (reference §8.4). */
  readonly mqtt: { readonly statusCode: number; readonly errorCode: string; readonly errorMessage: string };
}

export interface ProvisionRequest {
  readonly flow: ProvisioningFlow;
  readonly template: { readonly name: string } | { readonly body: string };
  readonly templateType: 'FLEET_PROVISIONING' | 'JITP';
  readonly parameters: Readonly<Record<string, string>>;
  /** MQTT: the certificate ownership token (the certificate comes from it). */
  readonly ownershipToken?: string | undefined;
  /** JITP: the device certificate being provisioned. */
  readonly certificate?: CertificateFacts | undefined;
  readonly claimCertificateId?: string | undefined;
  readonly clientId?: string | undefined;
  /** Bulk: the task and line, for the trace. */
  readonly taskId?: string | undefined;
  readonly line?: number | undefined;
  /** Bulk: how to write the line's result, so a CSR line records it inside its saga (apply.ts `result`). */
  readonly resultBody?: ((applied: AppliedResources) => string) | undefined;
}

export type ProvisionOutcome =
  | {
      readonly ok: true;
      readonly attemptId: string;
      readonly thingName?: string | undefined;
      readonly certificateId?: string | undefined;
      readonly certificatePem?: string | undefined;
      readonly deviceConfiguration: Record<string, string>;
      readonly resourceArns: Record<string, string>;
      /** Bulk: the line's result is already stored (a CSR line, recorded before its commit point). */
      readonly resultRecorded?: boolean | undefined;
    }
  | { readonly ok: false; readonly attemptId: string; readonly refusal: Refusal };

export interface Pipeline {
  provision(request: ProvisionRequest): Promise<ProvisionOutcome>;
}

/** MQTT answer fields of a refusal (reference §8.4: the field names differ from shadow and jobs errors). */
function mqttOf(reason: string, error: ThingsteadError): Refusal['mqtt'] {
  const errorCode = reason.startsWith('token_')
    ? 'InvalidCertificateOwnershipToken'
    : reason.startsWith('hook_')
      ? 'AccessDenied'
      : reason === 'parameters'
        ? 'InvalidParameters'
        : error.spec.awsName.replace(/Exception$/, '');
  const statusCode = reason.startsWith('hook_')
    ? 403
    : reason === 'throttled'
      ? 429
      : error.spec.status === 410
        ? 400
        : error.spec.status;
  return { statusCode, errorCode, errorMessage: error.message };
}

export function refusal(reason: string, error: ThingsteadError): Refusal {
  return { reason, error, mqtt: mqttOf(reason, error) };
}

const PARSE_CACHE_MAX = 64;

export function createPipeline(options: {
  templates: TemplateSource;
  tokens: OwnershipTokens;
  applier: Applier;
  traces: TraceLog;
  /** The certificate facts of a certificate id (PEM, CA, subject), for the hook and the template. */
  certificateFacts(certificateId: string, withSubject: boolean): Promise<CertificateFacts>;
  hook: { timeoutMs: number; allowPlainHttp: boolean };
  /** How long tokens are good for, as the expiry refusal says it ("1 hour"). */
  tokenTtlText: string;
  onInternalError?: (err: unknown) => void;
}): Pipeline {
  const { templates, tokens, applier, traces } = options;
  const parsedBodies = new Map<string, ParsedTemplate>();

  const fail = (trace: AttemptTrace, r: Refusal): ProvisionOutcome => {
    trace.step('refused', { reason: r.reason, message: r.error.message }, false);
    trace.finish('rejected', { reason: r.reason, message: r.error.message });
    return { ok: false, attemptId: trace.attemptId, refusal: r };
  };

  /** The template to use, or a refusal. */
  async function lookUp(
    request: ProvisionRequest,
    trace: AttemptTrace,
  ): Promise<{ parsed: ParsedTemplate; stored?: StoredTemplate } | Refusal> {
    if ('name' in request.template) {
      const name = request.template.name;
      trace.note({ templateName: name });
      const stored = await templates.getTemplate(name);
      if (!stored)
        return refusal('template_not_found', E.ProvisioningTemplateMissing({ templateName: name }));
      trace.step('template', {
        name,
        type: stored.type,
        enabled: stored.enabled,
        hook: !!stored.preProvisioningHook,
      });
      if (!stored.enabled)
        return refusal('template_disabled', E.ProvisioningTemplateDisabled({ templateName: name }));
      if (stored.type !== request.templateType)
        return refusal(
          'template_type',
          E.ProvisioningTemplateType({
            templateName: name,
            type: stored.type,
            expected: request.templateType,
          }),
        );
      return { parsed: stored.parsed, stored };
    }
    const body = request.template.body;
    let parsed = parsedBodies.get(body);
    if (!parsed) {
      const r = parseTemplate(body);
      if (!r.ok) {
        const first = r.errors[0];
        trace.step('template', { inline: true, errors: r.errors.slice(0, 10) }, false);
        return refusal(
          'template_invalid',
          E.ProvisioningTemplateInvalid({
            path: first?.path ?? '',
            problem: first?.message ?? 'invalid template',
            more: r.errors.length - 1,
          }),
        );
      }
      parsed = r.template;
      if (parsedBodies.size >= PARSE_CACHE_MAX) parsedBodies.delete(parsedBodies.keys().next().value!);
      parsedBodies.set(body, parsed);
    }
    trace.step('template', { inline: true });
    return { parsed };
  }

  async function run(request: ProvisionRequest, trace: AttemptTrace): Promise<ProvisionOutcome> {
    // ---- ownership token: which certificate, and only once ------------------------------------------
    let certificate = request.certificate;
    let tokenHash: string | undefined;
    if (request.ownershipToken !== undefined) {
      const taken = await tokens.take(request.ownershipToken);
      if (!taken.ok) {
        trace.step('token', { ok: false, reason: taken.reason }, false);
        return fail(trace, refusal(`token_${taken.reason}`, tokenError(taken.reason, options.tokenTtlText)));
      }
      tokenHash = hashToken(request.ownershipToken);
      trace.step('token', { certificateId: taken.row.certificateId, expiresAt: taken.row.expiresAt });
      trace.note({ certificateId: taken.row.certificateId });
      certificate = await options.certificateFacts(taken.row.certificateId, false);
    }
    const release = async () => {
      if (tokenHash) await tokens.release(request.ownershipToken!);
    };
    if (certificate) trace.note({ certificateId: certificate.certificateId });

    const found = await lookUp(request, trace);
    if ('reason' in found) {
      await release();
      return fail(trace, found);
    }

    // ---- pre-provisioning hook ------------------------------------------------------------------------
    let parameters: Record<string, string> = { ...request.parameters };
    const hook = found.stored?.preProvisioningHook;
    if (hook && found.stored) {
      const hookRequest = {
        claimCertificateId: request.claimCertificateId,
        certificateId: certificate?.certificateId,
        certificatePem: certificate?.certificatePem,
        templateArn: found.stored.arn,
        clientId: request.clientId,
        parameters,
      };
      trace.step('hook.request', { url: hook.targetArn, parameters });
      const outcome = await callHook(hook.targetArn, hookRequest, options.hook);
      if (!outcome.allow) {
        trace.step(
          'hook.answer',
          { allow: false, reason: outcome.reason, detail: outcome.detail, ms: outcome.ms },
          false,
        );
        await release();
        return fail(trace, refusal(outcome.reason, E.ProvisioningHookRefused({ detail: outcome.detail })));
      }
      trace.step('hook.answer', {
        allow: true,
        status: outcome.status,
        ms: outcome.ms,
        parameterOverrides: outcome.parameterOverrides,
      });
      parameters = { ...parameters, ...outcome.parameterOverrides };
    }

    // ---- evaluate -------------------------------------------------------------------------------------
    const evaluated = evaluateTemplate(found.parsed, {
      parameters,
      ...(certificate ? { certificate } : {}),
      templateType: request.templateType,
    });
    trace.step('evaluate', { ok: evaluated.ok, steps: evaluated.steps.slice(0, 100) }, evaluated.ok);
    if (!evaluated.ok) {
      await release();
      const e = evaluated.error;
      return fail(
        trace,
        refusal(
          e.code === 'InvalidTemplate' ? 'template_invalid' : 'parameters',
          E.ProvisioningParameters({ code: e.code, path: e.path, problem: e.message }),
        ),
      );
    }
    const plan = evaluated.plan;
    if (plan.thing) trace.note({ thingName: plan.thing.thingName });

    // ---- apply ----------------------------------------------------------------------------------------
    try {
      const applied = await applier.apply({
        plan,
        // A bulk line's journal entry names its task, so a resumed task waits for its cut lines' recovery.
        flow: request.taskId !== undefined ? `bulk:${request.taskId}` : request.flow,
        trace,
        certificateId: certificate?.certificateId,
        tokenHash,
        result:
          request.resultBody && request.taskId !== undefined && request.line !== undefined
            ? { taskId: request.taskId, line: request.line, body: request.resultBody }
            : undefined,
      });
      if (applied.certificateId) trace.note({ certificateId: applied.certificateId });
      trace.finish('accepted');
      return {
        ok: true,
        attemptId: trace.attemptId,
        thingName: applied.thingName,
        certificateId: applied.certificateId,
        certificatePem: applied.certificatePem,
        deviceConfiguration: plan.deviceConfiguration,
        resourceArns: applied.resourceArns,
        ...(applied.resultRecorded ? { resultRecorded: true } : {}),
      };
    } catch (err) {
      await release().catch(() => undefined);
      if (err instanceof ApplyRefusal) {
        const cause = isThingsteadError(err.error) ? err.error : E.ProvisioningInternal();
        return fail(trace, refusal(err.reason, E.ProvisioningApplyFailed({ problem: cause.message })));
      }
      throw err;
    }
  }

  return {
    async provision(request) {
      const trace = traces.begin(request.flow, {
        ...('name' in request.template ? { templateName: request.template.name } : {}),
        clientId: request.clientId,
        taskId: request.taskId,
        line: request.line,
      });
      try {
        return await run(request, trace);
      } catch (err) {
        options.onInternalError?.(err);
        return fail(trace, refusal('internal', E.ProvisioningInternal()));
      }
    },
  };
}

function tokenError(reason: string, ttl: string): ThingsteadError {
  if (reason === 'expired') return E.OwnershipTokenExpired({ ttl });
  if (reason === 'used') return E.OwnershipTokenUsed();
  if (reason === 'busy') return E.OwnershipTokenBusy();
  return E.OwnershipTokenUnknown();
}
