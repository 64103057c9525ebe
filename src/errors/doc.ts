/**
 * Renders docs/errors.md from the catalog (codes.ts) and the message kinds (kinds.ts), so the reference
 * cannot drift: errors.test.ts fails when the file differs, and `UPDATE_ERROR_DOCS=1 npx vitest run
 * src/errors` rewrites it.
 */
import { ERRORS, type ErrorCode } from './codes.js';
import { E } from './kinds.js';
import type { ErrorKind } from './template.js';

const cell = (s: string) => s.replace(/\|/g, '\\|');
const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(2, '0')}`;

export function renderErrorsDoc(): string {
  const kinds = Object.values(E) as ErrorKind[];
  const byCode = (code: ErrorCode) => kinds.filter((k) => k.code === code);
  const out: string[] = [
    '# Errors',
    '',
    '<!-- Generated from src/errors/codes.ts and src/errors/kinds.ts by src/errors/doc.ts.',
    '     Do not edit by hand: run `UPDATE_ERROR_DOCS=1 npx vitest run src/errors`. -->',
    '',
    'Every error Thingstead raises on the control plane has a **code** and a **message kind**.',
    '',
    '- The **code** is what a client sees: the HTTP status and the AWS exception name',
    "  (`x-amzn-ErrorType`, the SDKs' error name), and the MQTT 5 reason code where the error can surface on",
    '  MQTT. Codes and their AWS names never change.',
    '- The **message kind** names one failure and carries its text as a template. `{name}` takes a string,',
    '  `{name:number}` a number, `{name:list}` a list of strings joined with ", ". A throw site passes the',
    '  values (`throw E.RuleNotFound({ ruleName })`); the error keeps the kind in `err.kind`.',
    '',
    "Texts that AWS defines (SigV4, validation messages) are AWS's, word for word.",
    '',
    '## Codes',
    '',
    '| Code | HTTP status | AWS exception | MQTT 5 reason | Message kinds |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const [code, spec] of Object.entries(ERRORS) as Array<[ErrorCode, (typeof ERRORS)[ErrorCode]]>) {
    const mqtt = 'mqttReason' in spec ? hex(spec.mqttReason) : '';
    out.push(`| \`${code}\` | ${spec.status} | \`${spec.awsName}\` | ${mqtt} | ${byCode(code).length} |`);
  }
  out.push('', '## Message kinds by code', '');
  for (const [code, spec] of Object.entries(ERRORS) as Array<[ErrorCode, (typeof ERRORS)[ErrorCode]]>) {
    const mqtt = 'mqttReason' in spec ? `, MQTT 5 reason ${hex(spec.mqttReason)}` : '';
    out.push(`### \`${code}\``, '', `HTTP ${spec.status}, \`${spec.awsName}\`${mqtt}.`, '');
    const list = byCode(code);
    if (list.length === 0) {
      out.push('No message kind yet: raised with a message composed at the throw site.', '');
      continue;
    }
    out.push('| Kind | Message | When |', '| --- | --- | --- |');
    for (const k of list) out.push(`| \`${k.kind}\` | \`${cell(k.template)}\` | ${cell(k.when)} |`);
    out.push('');
  }
  return out.join('\n');
}
