/**
 * Job documents: where they come from (inline `document`, a `documentSource` URL fetched once at create
 * time, or a job template), their limits (32768 characters, a JSON object; reference §3.11, §11) and
 * document parameters (`${aws:iot:parameter:name}` placeholders, substituted from `documentParameters`).
 */
import { E } from '../errors/index.js';

export const MAX_DOCUMENT_CHARS = 32_768;
const PARAMETER = /\$\{aws:iot:parameter:([^}]*)\}/g;

/** Throws InvalidRequest unless `text` is a JSON object within the size limit. */
export function checkDocument(text: string): void {
  if (text.length > MAX_DOCUMENT_CHARS)
    throw E.JobDocumentTooLarge({ size: text.length, limit: MAX_DOCUMENT_CHARS });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw E.JobDocumentNotJson();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw E.JobDocumentNotJson();
}

/**
 * The document with every `${aws:iot:parameter:name}` replaced by its value, JSON-escaped so a value can
 * never break out of the string it stands in. Throws InvalidRequest for a placeholder without a value.
 */
export function substitute(document: string, parameters: Readonly<Record<string, string>> = {}): string {
  return document.replace(PARAMETER, (_, name: string) => {
    const value = parameters[name];
    if (value === undefined) throw E.JobDocumentParameter({ name });
    return JSON.stringify(value).slice(1, -1);
  });
}

/** A template's document: placeholders may stay (jobs made from it give their values); the rest must hold. */
export function checkTemplateDocument(document: string): void {
  checkDocument(document.replace(PARAMETER, 'x'));
}

/**
 * Fetch a documentSource: http and https URLs (Thingstead has no S3; a presigned S3 URL or any web server
 * works), at most MAX_DOCUMENT_CHARS, within `timeoutMs`. Throws InvalidRequest naming what went wrong.
 * The caller checks the document after substitution (`checkDocument(substitute(text, parameters))`).
 */
export async function fetchDocument(url: string, timeoutMs: number): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw E.JobDocumentSource({ url, reason: 'not a URL' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw E.JobDocumentSource({
      url,
      reason: `scheme ${parsed.protocol} is not supported (use http or https)`,
    });
  let res: Response;
  try {
    res = await fetch(parsed, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw E.JobDocumentSource({ url, reason: (err as Error).message });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw E.JobDocumentSource({ url, reason: `HTTP ${res.status}` });
  }
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > MAX_DOCUMENT_CHARS * 4) {
    await res.body?.cancel().catch(() => undefined);
    throw E.JobDocumentTooLarge({ size: declared, limit: MAX_DOCUMENT_CHARS });
  }
  const text = await res.text();
  if (text.length > MAX_DOCUMENT_CHARS)
    throw E.JobDocumentTooLarge({ size: text.length, limit: MAX_DOCUMENT_CHARS });
  return text;
}
