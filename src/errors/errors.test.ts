import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';
import { renderErrorsDoc } from './doc.js';
import { E, ERRORS, ThingsteadError, isThingsteadError, type ErrorCode, type ErrorKind } from './index.js';
import { placeholders, type PlaceholderType } from './template.js';

const DOC = new URL('../../docs/errors.md', import.meta.url);
const kinds = Object.values(E) as ErrorKind[];
const sample = (name: string, type: PlaceholderType, i: number) =>
  type === 'number' ? 1000 + i : type === 'list' ? [`${name}-a`, `${name}-b`] : `@${name}@`;
const shown = (v: ReturnType<typeof sample>) => (Array.isArray(v) ? v.join(', ') : String(v));

/** The rendered reference as prettier (the repository's format check) leaves it. */
const rendered = async () => {
  const options = await prettier.resolveConfig(fileURLToPath(DOC));
  return prettier.format(renderErrorsDoc(), { ...options, parser: 'markdown' });
};

describe('docs/errors.md', async () => {
  if (process.env.UPDATE_ERROR_DOCS) writeFileSync(DOC, await rendered());
  const doc = readFileSync(DOC, 'utf8');
  const rows = doc.split('\n').map((l) => l.replace(/ {2,}/g, ' '));

  it('documents every catalog code with its status, AWS name and MQTT reason', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      const row = rows.find((l) => l.startsWith(`| \`${code}\` |`));
      expect(row, code).toBeDefined();
      expect(row).toContain(`| ${spec.status} | \`${spec.awsName}\` |`);
      if ('mqttReason' in spec) expect(row).toContain(`0x${spec.mqttReason.toString(16).toUpperCase()}`);
      expect(doc).toContain(`### \`${code}\``);
    }
  });

  it('documents every message kind with its template and when it happens', () => {
    for (const k of kinds) {
      const row = rows.find((l) => l.startsWith(`| \`${k.kind}\` |`));
      expect(row, k.kind).toBeDefined();
      expect(row).toContain(k.template.replace(/\|/g, '\\|'));
      expect(k.when.length, `${k.kind}: say when it happens`).toBeGreaterThan(10);
    }
  });

  it('is current (UPDATE_ERROR_DOCS=1 npx vitest run src/errors rewrites it)', async () => {
    expect(doc).toBe(await rendered());
  });
});

describe('message kinds', () => {
  it('each names a catalog code, none is named like a code, and no two share a template', () => {
    const seen = new Map<string, string>();
    for (const k of kinds) {
      expect(Object.keys(ERRORS), k.kind).not.toContain(k.kind);
      expect(Object.keys(ERRORS), k.kind).toContain(k.code);
      expect(seen.get(k.template), `${k.kind} repeats ${seen.get(k.template)}`).toBeUndefined();
      seen.set(k.template, k.kind);
    }
  });

  it('fill every placeholder with an argument of its type, leaving no placeholder behind', () => {
    for (const k of kinds) {
      const slots = placeholders(k.template);
      expect(new Set(slots.map((s) => s.name)).size, `${k.kind}: a placeholder twice`).toBe(slots.length);
      const args = Object.fromEntries(slots.map((s, i) => [s.name, sample(s.name, s.type, i)]));
      const err = (k as unknown as (...a: unknown[]) => ThingsteadError)(...(slots.length ? [args] : []));
      expect(isThingsteadError(err)).toBe(true);
      expect(err.code).toBe(k.code);
      expect(err.kind).toBe(k.kind);
      expect(err.name).toBe(ERRORS[k.code].awsName);
      for (const v of Object.values(args)) expect(err.message, k.kind).toContain(shown(v));
      expect(err.message, k.kind).not.toMatch(/\{[A-Za-z_]\w*(:(string|number|list))?\}|%[sdj]/);
      if (slots.length === 0) expect(err.message).toBe(k.template);
      expect((k.describe as (a: unknown) => unknown)(args)).toEqual({
        kind: k.kind,
        code: k.code,
        message: err.message,
      });
    }
  });

  it('read placeholders as the types do: braces around anything but an identifier are text', () => {
    expect(placeholders('a {x} b {n:number} c {l:list}')).toEqual([
      { name: 'x', type: 'string' },
      { name: 'n', type: 'number' },
      { name: 'l', type: 'list' },
    ]);
    expect(placeholders('[\\w]{1,128} {actionType, resources} ${...} ${iot:ClientId}')).toEqual([]);
    expect(placeholders('variable ${{name}}')).toEqual([{ name: 'name', type: 'string' }]);
  });

  it('carry extra members and keep the throw site on top of the stack', () => {
    const err = E.RuleAlreadyExists({ ruleName: 'r1' }, { resourceId: 'r1' });
    expect(err.message).toBe('Rule r1 already exists');
    expect(err.extra).toEqual({ resourceId: 'r1' });
    expect(err.spec).toBe(ERRORS.ResourceAlreadyExists);
    expect(err.stack?.split('\n')[1]).toContain('errors.test.ts');
    expect(E.BodyNotJson().extra).toEqual({});
  });

  it('type their arguments', () => {
    const code: ErrorCode = E.TsPointKey.code;
    expect(code).toBe('InvalidRequest');
    expect(E.TsPointKey({ index: 3 }).message).toBe('points[3] needs thing and metric strings');
    expect(E.AuthInfoActionType({ actionTypes: ['CONNECT', 'PUBLISH'] }).message).toBe(
      'actionType must be one of CONNECT, PUBLISH',
    );
    // @ts-expect-error a number placeholder takes a number
    E.TsPointKey({ index: '3' });
    // @ts-expect-error every placeholder is required
    E.PolicyNotFound({});
    // @ts-expect-error a template without placeholders takes no arguments (only extra members)
    E.BodyNotJson({ policyName: 'p' }, {});
  });
});
