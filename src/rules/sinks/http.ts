import { ActionError, type ActionRequest } from '../actions.js';

/** POST the rendered body; 5xx, 429 and 408 are retryable, other non-2xx statuses permanent. */
export async function httpPost(r: Extract<ActionRequest, { kind: 'http' }>): Promise<void> {
  let res: Response;
  try {
    res = await fetch(r.url, {
      method: 'POST',
      headers: r.headers,
      body: Buffer.from(r.body, 'base64'),
      signal: AbortSignal.timeout(r.timeoutMs),
      redirect: 'manual',
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new ActionError(`POST ${r.url} failed: ${cause ?? (err as Error).message}`, true);
  }
  await res.arrayBuffer().catch(() => undefined);
  if (res.status >= 200 && res.status < 300) return;
  // 5xx, 429 and 408 are worth retrying; other statuses will not change by themselves.
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  throw new ActionError(`POST ${r.url} answered HTTP ${res.status}`, retryable);
}
