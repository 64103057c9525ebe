import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertJsonDepth, jsonDepth, JsonLimitError, parseJsonBounded, valueDepth } from './index.js';

describe('bounded JSON', () => {
  it('jsonDepth agrees with the depth of the parsed value, for strings and buffers', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 12 }), (text) => {
        const expected = valueDepth(JSON.parse(text));
        expect(jsonDepth(text)).toBe(expected);
        expect(jsonDepth(Buffer.from(text))).toBe(expected);
      }),
      { seed: 8, numRuns: 300 },
    );
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonDepth('{"a":"[[[{{{\\"]]]"}')).toBe(1);
    expect(jsonDepth('"\\\\"')).toBe(0);
    expect(jsonDepth('[{"é[":["ü"]}]')).toBe(3);
  });

  it('refuses text past the limits without recursing, at any depth', () => {
    for (const depth of [65, 10_000, 1_000_000]) {
      const text = '['.repeat(depth) + ']'.repeat(depth);
      expect(() => parseJsonBounded(text, { maxDepth: 64 })).toThrow(JsonLimitError);
      expect(() => assertJsonDepth(Buffer.from(text), 64, 'The payload')).toThrow(
        /The payload exceeds the maximum JSON nesting depth of 64/,
      );
    }
    expect(parseJsonBounded('['.repeat(64) + ']'.repeat(64), { maxDepth: 64 })).toBeInstanceOf(Array);
    const big = () => parseJsonBounded('[1,2,3]', { maxDepth: 64, maxBytes: 4 });
    expect(big).toThrow(JsonLimitError);
    expect(() => big()).toThrow(expect.objectContaining({ code: 'EntityTooLarge', limit: 'maxBytes' }));
    expect(() => parseJsonBounded('{', { maxDepth: 64 })).toThrow(SyntaxError);
  });

  it('valueDepth walks built values iteratively and stops early', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    expect(valueDepth(deep, 16)).toBe(17);
    expect(valueDepth({ a: [1, { b: 2 }] })).toBe(3);
    expect(valueDepth('x')).toBe(0);
  });
});
