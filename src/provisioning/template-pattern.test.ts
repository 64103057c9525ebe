import { describe, expect, it } from 'vitest';
import { evaluateTemplate, parseTemplate } from './template.js';
import { MAX_MATCHED_LENGTH, MAX_PATTERN_LENGTH, patternProblem } from './template-pattern.js';

// AllowedPattern runs a device's parameter value through a backtracking RegExp with no time limit: unsafe
// shapes are refused when the template is parsed (issue 12).

const template = (pattern: string) =>
  JSON.stringify({
    Parameters: { Serial: { Type: 'String', AllowedPattern: pattern } },
    Resources: { thing: { Type: 'AWS::IoT::Thing', Properties: { ThingName: { Ref: 'Serial' } } } },
  });

describe('AllowedPattern guard', () => {
  it('accepts the patterns templates use', () => {
    for (const p of [
      'SN[0-9]*',
      '[A-Z]{2}-[0-9]{4,8}',
      '(SN|PN)-[0-9]+',
      '[a-f0-9]{64}',
      '(?:dev)?[a-z]+-\\d+',
      '\\p{L}+_[0-9]{1,3}',
      '[+*()|]+x',
      'a{2}',
    ])
      expect(patternProblem(p), p).toBeNull();
  });

  it('refuses nested quantifiers, repeated alternations, backreferences, adjacent and too many unbounded quantifiers, long patterns', () => {
    for (const [p, why] of [
      ['(a+)+', /repeated group holds a quantifier/],
      ['(\\w+\\s?)*', /repeated group holds a quantifier/],
      ['((ab)*c)+', /repeated group holds a quantifier/],
      ['(a|aa)*', /repeated group holds an alternation/],
      ['(?:x|y){2,}', /alternation/],
      ['(a)\\1', /backreference/],
      ['(?<n>a)\\k<n>', /backreference/],
      ['\\d+\\d*', /two unbounded quantifiers follow each other/],
      ['.*.*=', /two unbounded quantifiers/],
      ['a+?b*', /two unbounded quantifiers/],
      ['a+-b+-c+-d+', /more than 3 unbounded quantifiers/],
      ['x'.repeat(MAX_PATTERN_LENGTH + 1), /longer than 512 characters/],
    ] as const)
      expect(patternProblem(p), p).toMatch(why);
  });

  it('an unsafe pattern is refused at template creation with its path; a catastrophic one never runs', () => {
    const r = parseTemplate(template('(a+)+b'));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      expect.objectContaining({
        path: 'Parameters.Serial.AllowedPattern',
        message: expect.stringContaining(
          'AllowedPattern is refused: a repeated group holds a quantifier ((a+)+ ...), which can backtrack exponentially',
        ),
      }),
    ]);
  });

  it('a value longer than the matched-length cap is refused before the pattern runs', () => {
    const r = parseTemplate(template('[a-z]+'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const ctx = { templateType: 'FLEET_PROVISIONING' as const };
    expect(evaluateTemplate(r.template, { ...ctx, parameters: { Serial: 'abc' } }).ok).toBe(true);
    const long = evaluateTemplate(r.template, {
      ...ctx,
      parameters: { Serial: 'a'.repeat(MAX_MATCHED_LENGTH + 1) },
    });
    expect(long.ok).toBe(false);
    if (long.ok) return;
    expect(long.error.message).toMatch(
      /longer than 1024 characters, the most an AllowedPattern is tested on/,
    );
  });
});
