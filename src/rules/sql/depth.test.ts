import { describe, expect, it } from 'vitest';
import { compileSql, parsePayload, SqlParseError } from './index.js';
import { MAX_SQL_DEPTH } from './parser.js';

// Issue 8: rule SQL and payloads from outside must never overflow the stack; too deep is a client error.

describe('nesting limits of rule SQL', () => {
  const deep = [
    ['parentheses', `SELECT ${'('.repeat(1000)}1${')'.repeat(1000)} AS x FROM 'a'`],
    ['NOT', `SELECT ${'NOT '.repeat(5000)}true AS x FROM 'a'`],
    ['unary minus', `SELECT ${'- '.repeat(5000)}1 AS x FROM 'a'`],
    ['unary plus', `SELECT ${'+'.repeat(5000)}1 AS x FROM 'a'`],
    ['member chain', `SELECT a${'.a'.repeat(10_000)} FROM 'a'`],
    ['index chain', `SELECT a${'[0]'.repeat(10_000)} FROM 'a'`],
    ['operator chain', `SELECT ${Array(10_000).fill('a').join(' AND ')} AS x FROM 'a'`],
    ['function calls', `SELECT ${'abs('.repeat(3000)}1${')'.repeat(3000)} AS x FROM 'a'`],
    ['nested queries', `SELECT ${'(SELECT VALUE '.repeat(500)}1${' FROM a)'.repeat(500)} AS x FROM 'a'`],
  ] as const;
  for (const [what, sql] of deep)
    it(`refuses deep ${what} with SqlParseException and a position`, () => {
      let err: unknown;
      try {
        compileSql(sql, '2016-03-23');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SqlParseError);
      expect((err as SqlParseError).message).toMatch(
        new RegExp(`nesting exceeds the maximum depth of ${MAX_SQL_DEPTH} at position \\d+`),
      );
      expect((err as SqlParseError).code).toBe('SqlParse');
    });

  it('accepts ordinary nesting and long flat lists', () => {
    expect(() => compileSql(`SELECT ${'('.repeat(40)}a + 1${')'.repeat(40)} AS x FROM 'a'`)).not.toThrow();
    const many = Array.from({ length: 500 }, (_, i) => `a${i}`).join(', ');
    expect(() => compileSql(`SELECT ${many} FROM 'a'`)).not.toThrow();
  });
});

describe('payload depth', () => {
  it('a payload deeper than the limit cannot be evaluated: evaluate throws the limit error', () => {
    const sql = compileSql("SELECT * FROM 'a'");
    const payload = Buffer.from('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000));
    const parsed = parsePayload(payload, 64);
    expect(parsed.error?.message).toMatch(/nesting depth of 64/);
    expect(() => sql.evaluate({ topic: 'a', payload, timestamp: 0 }, parsed)).toThrow(/nesting depth of 64/);
    // without a parsed payload, evaluate parses with the context's limit
    expect(() => sql.evaluate({ topic: 'a', payload, timestamp: 0, maxJsonDepth: 64 })).toThrow(/64/);
    const ok = Buffer.from('{"a":{"b":1}}');
    expect(sql.evaluate({ topic: 'a', payload: ok, timestamp: 0 }, parsePayload(ok, 2))).toEqual({
      matched: true,
      value: { a: { b: 1 } },
    });
  });

  it('decode() of deep JSON is an evaluation error, not a stack overflow', () => {
    const sql = compileSql("SELECT decode(p, 'base64') AS d FROM 'a'", '2016-03-23');
    const inner = Buffer.from('['.repeat(10_000) + ']'.repeat(10_000)).toString('base64');
    const payload = Buffer.from(JSON.stringify({ p: inner }));
    expect(() => sql.evaluate({ topic: 'a', payload, timestamp: 0 })).toThrow(/decode\(\).*nesting depth/);
  });
});
