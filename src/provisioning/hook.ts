import { isIP } from 'node:net';

/**
 * The pre-provisioning hook (AWS: a Lambda function named by `preProvisioningHook.targetArn`): here an
 * HTTPS (or, on loopback or when allowed, HTTP) webhook named by a URL in `targetArn`. AWS's request and
 * answer shapes (AWS IoT Developer Guide, "Pre-provisioning hooks"):
 *
 *   POST <targetArn>   {"claimCertificateId","certificateId","certificatePem","templateArn","clientId","parameters"}
 *   200              {"allowProvisioning": true|false, "parameterOverrides": {"k": "v"}}
 *
 * Anything else refuses the registration, as at AWS (ACCESS_DENIED): a status other than 2xx, a body that is
 * not that JSON, `allowProvisioning` not true (the string "true" is accepted like AWS's Lambda examples), no
 * answer within the time limit (AWS: 5 s), a connection failure. Each outcome has its own reason code so a
 * trace says which it was. Never throws.
 */

export interface HookRequest {
  readonly claimCertificateId?: string | undefined;
  readonly certificateId?: string | undefined;
  readonly certificatePem?: string | undefined;
  readonly templateArn: string;
  readonly clientId?: string | undefined;
  readonly parameters: Readonly<Record<string, string>>;
}

export type HookOutcome =
  | {
      readonly allow: true;
      readonly parameterOverrides: Record<string, string>;
      readonly status: number;
      readonly ms: number;
    }
  | {
      readonly allow: false;
      /** hook_denied, hook_timeout, hook_status, hook_answer, hook_unreachable, hook_url */
      readonly reason: string;
      readonly detail: string;
      readonly status?: number;
      readonly ms: number;
    };

/** Is the hook URL one we may call? Refusal text, or null. */
export function hookUrlProblem(targetArn: string, allowPlainHttp: boolean): string | null {
  let url: URL;
  try {
    url = new URL(targetArn);
  } catch {
    return `targetArn ${JSON.stringify(targetArn)} is not a URL; Thingstead calls an https:// (or loopback http://) webhook instead of a Lambda ARN`;
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'arn:')
    return 'targetArn must be an https:// or http:// URL, not a Lambda ARN: Thingstead calls a webhook (give its URL) instead of a Lambda function';
  if (url.protocol !== 'http:') return `targetArn must be an https:// or http:// URL, not ${url.protocol}`;
  if (allowPlainHttp || isLoopback(url.hostname)) return null;
  return `plain http to ${url.hostname} is refused (only loopback hosts may use http://; set provisioning.allowPlainHttpHooks to allow it)`;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

/**
 * Call the hook and interpret its answer.
 * @example const o = await callHook('https://factory.example/allow', request, { timeoutMs: 5000, allowPlainHttp: false });
 */
export async function callHook(
  targetArn: string,
  request: HookRequest,
  options: { timeoutMs: number; allowPlainHttp: boolean },
): Promise<HookOutcome> {
  const t0 = Date.now();
  const ms = () => Date.now() - t0;
  const problem = hookUrlProblem(targetArn, options.allowPlainHttp);
  if (problem) return { allow: false, reason: 'hook_url', detail: problem, ms: 0 };
  let response: Response;
  let text: string;
  try {
    const signal = AbortSignal.timeout(options.timeoutMs);
    response = await fetch(targetArn, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
      signal,
      redirect: 'error',
    });
    text = await response.text();
  } catch (err) {
    const e = err as Error;
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return {
        allow: false,
        reason: 'hook_timeout',
        detail: `no answer within ${options.timeoutMs} ms`,
        ms: ms(),
      };
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return {
      allow: false,
      reason: 'hook_unreachable',
      detail: cause?.code ?? cause?.message ?? e.message,
      ms: ms(),
    };
  }
  if (response.status < 200 || response.status > 299)
    return {
      allow: false,
      reason: 'hook_status',
      detail: `HTTP ${response.status}`,
      status: response.status,
      ms: ms(),
    };
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return {
      allow: false,
      reason: 'hook_answer',
      detail: 'the answer is not JSON',
      status: response.status,
      ms: ms(),
    };
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer))
    return {
      allow: false,
      reason: 'hook_answer',
      detail: 'the answer is not a JSON object',
      status: response.status,
      ms: ms(),
    };
  const a = answer as Record<string, unknown>;
  const allow = a.allowProvisioning === true || a.allowProvisioning === 'true';
  if (!allow)
    return {
      allow: false,
      reason: 'hook_denied',
      detail: `allowProvisioning is ${JSON.stringify(a.allowProvisioning ?? null)}`,
      status: response.status,
      ms: ms(),
    };
  const overrides: Record<string, string> = {};
  const raw = a.parameterOverrides;
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw))
      return {
        allow: false,
        reason: 'hook_answer',
        detail: 'parameterOverrides is not an object',
        status: response.status,
        ms: ms(),
      };
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      if (typeof v !== 'string')
        return {
          allow: false,
          reason: 'hook_answer',
          detail: `parameterOverrides.${k} is not a string`,
          status: response.status,
          ms: ms(),
        };
      overrides[k] = v;
    }
  }
  return { allow: true, parameterOverrides: overrides, status: response.status, ms: ms() };
}
