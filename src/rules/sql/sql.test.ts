import { describe, expect, it } from 'vitest';
import { compileSql, parsePayload, SqlParseError, toJson, type SqlVersion } from './index.js';

// Conformance tests built from the AWS IoT Developer Guide's SQL reference examples
// (iot-sql-select, iot-sql-where, iot-sql-operators, iot-sql-functions, iot-sql-data-types,
// iot-sql-nested-queries, iot-sql-version, binary-payloads), reference §10.

const V1: SqlVersion = '2015-10-08';
const V2: SqlVersion = '2016-03-23';

function run(sql: string, payload: unknown, version: SqlVersion = V2, topic = 'topic/subtopic') {
  const bytes = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const compiled = compileSql(sql, version);
  return compiled.evaluate(
    { topic, payload: bytes, clientId: 'client-1', principal: 'abc123', timestamp: 1_700_000_000_000 },
    parsePayload(bytes),
  );
}
/** The SELECT output as JSON text (what an action receives), or null when WHERE did not match. */
function out(sql: string, payload: unknown, version: SqlVersion = V2, topic?: string): string | null {
  const r = run(sql, payload, version, topic);
  return r.matched ? (Buffer.isBuffer(r.value) ? `bytes:${r.value.toString()}` : toJson(r.value)) : null;
}
/** Evaluate one expression as `SELECT VALUE expr`. */
function val(expr: string, payload: unknown = {}, version: SqlVersion = V2): unknown {
  const r = run(`SELECT VALUE ${expr} FROM 't'`, payload, version);
  if (!r.matched) throw new Error('no match');
  return r.value;
}

describe('SELECT clause [iot-sql-select]', () => {
  const msg = { color: 'red', temperature: 100 };
  it('SELECT * passes the whole payload', () => {
    expect(out("SELECT * FROM 'topic/subtopic'", msg)).toBe('{"color":"red","temperature":100}');
  });
  it('selects and renames fields', () => {
    expect(out("SELECT color FROM 'topic/subtopic'", msg)).toBe('{"color":"red"}');
    expect(out("SELECT color AS my_color FROM 'topic/subtopic'", msg)).toBe('{"my_color":"red"}');
    expect(out("SELECT color as my_color, temperature FROM 'topic/subtopic'", msg)).toBe(
      '{"my_color":"red","temperature":100}',
    );
  });
  it('SELECT *, expr AS x adds keys', () => {
    expect(out("SELECT *, 15 as speed FROM 'topic/subtopic'", msg)).toBe(
      '{"color":"red","temperature":100,"speed":15}',
    );
  });
  it('arithmetic in the projection', () => {
    expect(out("SELECT temperature - 32 AS adjusted FROM 'a'", msg)).toBe('{"adjusted":68}');
    expect(out("SELECT (temperature - 32) * 5 / 9 AS c FROM 'a'", { temperature: 212 })).toBe('{"c":100}');
  });
  it('nested attribute paths', () => {
    expect(out("SELECT a.b FROM 'a'", { a: { b: 'c' } })).toBe('{"b":"c"}');
    expect(out("SELECT a.b.c AS deep FROM 'a'", { a: { b: { c: 5 } } })).toBe('{"deep":5}');
  });
  it('missing attributes are Undefined and omitted; Null is kept', () => {
    expect(out("SELECT foo, bar FROM 'a'", { foo: null })).toBe('{"foo":null}');
    expect(out("SELECT NULL AS n FROM 'a'", {})).toBe('{"n":null}');
  });
  it('SELECT VALUE emits a bare value, and arrays under 2016-03-23', () => {
    expect(out("SELECT VALUE temperature FROM 'a'", msg)).toBe('100');
    expect(out("SELECT VALUE [1, 2] FROM 'a'", msg)).toBe('[1,2]');
  });
  it('an attribute named value still works', () => {
    expect(out("SELECT value FROM 'a'", { value: 3 })).toBe('{"value":3}');
  });
  it('dotted aliases nest the output', () => {
    expect(out("SELECT color AS bar.baz FROM 'a'", msg)).toBe('{"bar":{"baz":"red"}}');
  });
  it('object and array literals (2016-03-23)', () => {
    expect(out("SELECT {'a': temperature, 'b': [1, color]} AS o FROM 'a'", msg)).toBe(
      '{"o":{"a":100,"b":[1,"red"]}}',
    );
  });
});

describe('documented examples [iot-sql-json, iot-rule-sql-version]', () => {
  it('applies a function to an attribute value', () => {
    const msg = {
      deviceid: 'iot123',
      temp: 54.98,
      humidity: 32.43,
      coords: { latitude: 47.615694, longitude: -122.3359976 },
    };
    expect(out("SELECT temp, md5(deviceid) AS hashed_id FROM 'topic/#'", msg)).toBe(
      '{"temp":54.98,"hashed_id":"e37f81fb397e595c4aeb5645b8cbbbd1"}',
    );
  });
  it('get() reaches keys with hyphens and digits, with double-quoted strings', () => {
    const msg = { mydata: { item2: { '0': { 'my-key': 'myValue' } } } };
    expect(
      out(`SELECT * FROM 'iot/rules' WHERE get(get(get(mydata,"item2"),"0"),"my-key") = "myValue"`, msg),
    ).not.toBeNull();
    expect(
      out(`SELECT * FROM 'iot/rules' WHERE get(get(get(mydata,"item2"),"0"),"my-key") = "other"`, msg),
    ).toBeNull();
  });
  it('outputs an array as a top-level object (2016-03-23)', () => {
    expect(out("SELECT VALUE arr FROM 'topic'", { a: { b: 'c' }, arr: [1, 2, 3, 4] })).toBe('[1,2,3,4]');
  });
  it('intra-object query over an array of objects', () => {
    const msg = {
      e: [
        { n: 'temperature', u: 'Cel', t: 1234, v: 22.5 },
        { n: 'light', u: 'lm', t: 1235, v: 135 },
        { n: 'acidity', u: 'pH', t: 1235, v: 7 },
      ],
    };
    expect(out("SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'", msg)).toBe(
      '{"temperature":[{"v":22.5}]}',
    );
  });
  it('selects a nested property with a dotted alias', () => {
    const msg = { foo: { bar: 'RED', bar1: 'GREEN', bar2: 'BLUE' } };
    expect(out("SELECT foo.bar AS bar.baz FROM 'topic/subtopic'", msg)).toBe('{"bar":{"baz":"RED"}}');
  });
});

describe('FROM and WHERE [iot-sql-from, iot-sql-where]', () => {
  it('exposes the topic filter', () => {
    expect(compileSql("SELECT * FROM 'dev/+/telemetry'").topicFilter).toBe('dev/+/telemetry');
    expect(compileSql("SELECT * FROM '$aws/things/+/shadow/update/accepted'").topicFilter).toBe(
      '$aws/things/+/shadow/update/accepted',
    );
  });
  it('WHERE filters before SELECT', () => {
    expect(out("SELECT * FROM 'a' WHERE temperature > 50", { temperature: 60 })).not.toBeNull();
    expect(out("SELECT * FROM 'a' WHERE temperature > 50", { temperature: 40 })).toBeNull();
    expect(
      out("SELECT * FROM 'a' WHERE color = 'red' AND temperature >= 100", { color: 'red', temperature: 100 }),
    ).not.toBeNull();
  });
  it('WHERE on an Undefined attribute does not match', () => {
    expect(out("SELECT * FROM 'a' WHERE temperature > 50", {})).toBeNull();
  });
  it('WHERE cannot see SELECT aliases', () => {
    expect(out("SELECT temperature AS t FROM 'a' WHERE t > 1", { temperature: 5 })).toBeNull();
  });
  it('IN tests membership', () => {
    expect(out("SELECT * FROM 'a' WHERE color IN ['red', 'blue']", { color: 'red' })).not.toBeNull();
    expect(out("SELECT * FROM 'a' WHERE color IN ['green']", { color: 'red' })).toBeNull();
  });
});

describe('operators [iot-sql-operators]', () => {
  it('AND/OR accept booleans and the strings true/false; other values give Undefined', () => {
    expect(val("true AND 'TRUE'")).toBe(true);
    expect(val("'false' OR false")).toBe(false);
    expect(val('1 AND true')).toBeUndefined();
    expect(val("NOT 'true'")).toBe(false);
  });
  it('comparisons convert both sides to Decimal', () => {
    expect(val("'5' > 4")).toBe(true);
    expect(val('5.5 >= 5')).toBe(true);
    expect(val("'abc' > 1")).toBeUndefined();
  });
  it('= compares same types, arrays in order, objects ignoring order; mismatched types are false', () => {
    expect(val('a = b', { a: [1, 2], b: [1, 2] })).toBe(true);
    expect(val('a = b', { a: [1, 2], b: [2, 1] })).toBe(false);
    expect(val('a = b', { a: { x: 1, y: 2 }, b: { y: 2, x: 1 } })).toBe(true);
    expect(val("5 = '5'")).toBe(false);
    expect(val('5 = 5.0')).toBe(true);
    expect(val('missing = 1')).toBeUndefined();
    expect(val('1 <> 2')).toBe(true);
  });
  it('+ concatenates when either side is a String', () => {
    expect(val("'a' + 1")).toBe('a1');
    expect(val("'5' + '6'")).toBe('56');
  });
  it('arithmetic: Int op Int is Int, Decimal otherwise; strings convert; Undefined propagates', () => {
    expect(val('7 / 2')).toBe(3);
    expect(val('7.0 / 2', {}, V1)).toBe(3.5);
    expect(val('7.5 / 2.5')).toBe(3);
    expect(val('-7 / 2')).toBe(-3);
    expect(val('7 % 3')).toBe(1);
    expect(val("'4' * 2")).toBe(8);
    expect(val('1 / 0')).toBeUndefined();
    expect(val('true + 1')).toBeUndefined();
    expect(out("SELECT missing + 1 AS x FROM 'a'", {})).toBe('{}');
  });
  it('unary minus and precedence', () => {
    expect(val('-temperature + 2 * 3', { temperature: 4 })).toBe(2);
    expect(val('2 + 3 * 4 - 1')).toBe(13);
    expect(val('NOT 1 = 2 AND true')).toBe(true);
  });
});

describe('CASE [iot-sql-case]', () => {
  const sql =
    "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' ELSE 'stop' END as instructions FROM 'a'";
  it('picks the matching WHEN, else ELSE', () => {
    expect(out(sql, { color: 'yellow' })).toBe('{"instructions":"caution"}');
    expect(out(sql, { color: 'red' })).toBe('{"instructions":"stop"}');
  });
  it('an Undefined subject gives Undefined', () => {
    expect(out(sql, {})).toBe('{}');
  });
  it('searched CASE', () => {
    expect(val("CASE WHEN t > 30 THEN 'hot' WHEN t > 10 THEN 'mild' END", { t: 20 })).toBe('mild');
    expect(val("CASE WHEN t > 30 THEN 'hot' END", { t: 0 })).toBeUndefined();
  });
});

describe('nested queries [iot-sql-nested-queries] (2016-03-23)', () => {
  const msg = {
    e: [
      { n: 'temperature', v: 23 },
      { n: 'humidity', v: 45 },
      { n: 'temperature', v: 25 },
    ],
  };
  it('SELECT VALUE over an array attribute with WHERE', () => {
    expect(out("SELECT (SELECT VALUE v FROM e WHERE n = 'temperature') AS temps FROM 'a'", msg)).toBe(
      '{"temps":[23,25]}',
    );
  });
  it('SELECT fields over an array', () => {
    expect(out("SELECT (SELECT v FROM e WHERE n = 'humidity') AS h FROM 'a'", msg)).toBe('{"h":[{"v":45}]}');
  });
});

describe('functions [iot-sql-functions]', () => {
  it('context functions', () => {
    expect(val('topic()')).toBe('topic/subtopic');
    expect(out("SELECT topic(2) AS thing FROM 'things/+/data'", {}, V2, 'things/dev-1/data')).toBe(
      '{"thing":"dev-1"}',
    );
    expect(out("SELECT topic() AS t FROM '$aws/rules/r1/#'", {}, V2, '$aws/rules/r1/a/b')).toBe(
      '{"t":"a/b"}',
    );
    expect(val('clientid()')).toBe('client-1');
    expect(val('principal()')).toBe('abc123');
    expect(val('timestamp()')).toBe(1_700_000_000_000);
    expect(val('newuuid()')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(val('accountid()')).toMatch(/^\d{12}$/);
  });
  it('default output names for functions', () => {
    expect(out("SELECT timestamp(), clientid() FROM 'a'", {})).toBe(
      '{"timestamp":1700000000000,"clientid":"client-1"}',
    );
  });
  it('math', () => {
    expect(val('abs(-5)')).toBe(5);
    expect(val('abs(-5.123)')).toBe(5.123);
    expect(val("abs('-5.123')")).toBe(5.123);
    expect(val('ceil(1.2)')).toBe(2);
    expect(val('ceil(-1.2)')).toBe(-1);
    expect(val('floor(1.2)')).toBe(1);
    expect(val('floor(-1.2)')).toBe(-2);
    expect(val('round(1.234)')).toBe(1);
    expect(val('round(1.5)')).toBe(2);
    expect(val('round(-1.5)')).toBe(-2);
    expect(val('mod(8, 3)')).toBe(2);
    expect(val('mod(-8, 3)')).toBe(1);
    expect(val('remainder(-8, 3)')).toBe(-2);
    expect(val('power(2, 3)')).toBe(8);
    expect(val('sqrt(9)')).toBe(3);
    expect(val('sign(-21)')).toBe(-1);
    expect(val('trunc(2.3123, 2)')).toBe(2.31);
    expect(val('trunc(2.888, 2)')).toBe(2.88);
    expect(val('log(100)')).toBe(2);
    expect(val('ln(1)')).toBe(0);
    expect(val('bitand(13, 5)')).toBe(5);
    expect(val('bitor(12, 10)')).toBe(14);
    expect(val('bitxor(12, 10)')).toBe(6);
    expect(val('bitnot(13)')).toBe(-14);
    expect(val("abs('x')")).toBeUndefined();
    expect(typeof val('rand()')).toBe('number');
  });
  it('strings', () => {
    expect(val("concat('con', 'cat')")).toBe('concat');
    expect(val("concat(1, 'hello')")).toBe('1hello');
    expect(val('concat([1, 2], [3])')).toEqual([1, 2, 3]);
    expect(val("length('hi')")).toBe(2);
    expect(val("numbytes('ü')")).toBe(2);
    expect(val("lower('HELLO')")).toBe('hello');
    expect(val("upper('hello')")).toBe('HELLO');
    expect(val("trim('  hi  ')")).toBe('hi');
    expect(val("ltrim('  hi  ')")).toBe('hi  ');
    expect(val("rtrim('  hi  ')")).toBe('  hi');
    expect(val("lpad('hello', 2)")).toBe('  hello');
    expect(val("rpad('hello', 2)")).toBe('hello  ');
    expect(val("lpad('hello', -3)")).toBe('hello');
    expect(val("replace('abcd', 'bc', 'x')")).toBe('axd');
    expect(val("indexof('abcd', 'bc')")).toBe(1);
    expect(val("startswith('abc', 'a')")).toBe(true);
    expect(val("endswith('abc', 'a')")).toBe(false);
    expect(val('chr(65)')).toBe('A');
    expect(val("regexp_matches('aaaa', 'a{2,}')")).toBe(true);
    expect(val("regexp_replace('abcd', '[ab]', '')")).toBe('cd');
    expect(val("regexp_substr('hihihello', 'hi')")).toBe('hi');
  });
  it('substring: 0-based, clamped, decimals rounded down', () => {
    expect(val("substring('012345', 0)")).toBe('012345');
    expect(val("substring('012345', 2)")).toBe('2345');
    expect(val("substring('012345', 2.745)")).toBe('2345');
    expect(val('substring(123, 2)')).toBe('3');
    expect(val("substring('012345', -1)")).toBe('012345');
    expect(val("substring('012345', 1, 3)")).toBe('12');
    expect(val("substring('012345', -50, 50)")).toBe('012345');
    expect(val("substring('012345', 3, 1)")).toBe('');
  });
  it('get on arrays, strings and objects', () => {
    expect(val("get(['a', 'b'], 1)")).toBe('b');
    expect(val("get('abc', 1)")).toBe('b');
    expect(val('get(o, "a-b")', { o: { 'a-b': 5 } })).toBe(5);
    expect(val("get(o, '1x')", { o: { '1x': 'digit' } })).toBe('digit');
    expect(val('get(arr, 5)', { arr: [1] })).toBeUndefined();
  });
  it('hashes', () => {
    expect(val("md5('hello')")).toBe('5d41402abc4b2a76b9719d911017c592');
    expect(val("sha1('hello')")).toBe('aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d');
    expect(val("sha256('hello')")).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  });
  it('isNull / isUndefined', () => {
    expect(val('isNull(a)', { a: null })).toBe(true);
    expect(val('isNull(a)', {})).toBe(false);
    expect(val('isUndefined(a)', {})).toBe(true);
  });
  it('transform enrichArray', () => {
    expect(val("transform('enrichArray', o, arr)", { o: { k: 1 }, arr: [{ a: 1 }, { a: 2 }] })).toEqual([
      { a: 1, k: 1 },
      { a: 2, k: 1 },
    ]);
  });
  it('parse_time and time_to_epoch (Joda patterns)', () => {
    expect(val("parse_time('yyyy-MM-dd HH:mm:ss', 1520199750000)")).toBe('2018-03-04 21:42:30');
    expect(val("parse_time('yyyy-MM-dd HH:mm:ss z', 1520199750000, 'America/Belize')")).toBe(
      '2018-03-04 15:42:30 America/Belize',
    );
    expect(val("parse_time('yyyy.MM.dd G ''at'' HH', 0)")).toBe('1970.01.01 G at 00');
    expect(val('parse_time("yyyy-MM-dd\'T\'HH:mm:ss.SSSZZ", 1520199750123)')).toBe(
      '2018-03-04T21:42:30.123Z',
    );
    expect(val("time_to_epoch('2018-03-04 21:42:30', 'yyyy-MM-dd HH:mm:ss')")).toBe(1520199750000);
    expect(val("time_to_epoch('2018-03-04T23:42:30+02:00', \"yyyy-MM-dd'T'HH:mm:ssZZ\")")).toBe(
      1520199750000,
    );
    expect(val("time_to_epoch('garbage', 'yyyy')")).toBeUndefined();
  });
  it('cast', () => {
    expect(val('cast(true AS Int)')).toBe(1);
    expect(val("cast('12.7' AS Int)")).toBe(12);
    expect(val('cast(12.7 AS Int)')).toBe(12);
    expect(val('cast(12 AS String)')).toBe('12');
    expect(val("cast('true' AS Boolean)")).toBe(true);
    expect(val('cast(0 AS Bool)')).toBe(false);
    expect(val('cast(5 AS Bool)')).toBe(true);
    expect(val("cast('3.5' AS Decimal)")).toBe(3.5);
    expect(val("cast('x' AS Int)")).toBeUndefined();
  });
});

describe('binary payloads [binary-payloads]', () => {
  const bytes = Buffer.from([0x00, 0xff, 0x10, 0x41]);
  it('SELECT * forwards non-JSON bytes unchanged', () => {
    const r = run("SELECT * FROM 'a'", bytes);
    expect(r.matched && Buffer.isBuffer(r.value) && r.value.equals(bytes)).toBe(true);
  });
  it('encode(*, base64) mixes raw bytes into JSON', () => {
    expect(out("SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'a'", bytes)).toBe(
      `{"data":"${bytes.toString('base64')}","ts":1700000000000}`,
    );
  });
  it('decode(encode(*)) turns a non-JSON text payload into a value', () => {
    expect(out("SELECT decode(encode(*, 'base64'), 'base64') AS text FROM 'a'", 'plain text')).toBe(
      '{"text":"plain text"}',
    );
    expect(val("decode('eyJhIjoxfQ==', 'base64')")).toEqual({ a: 1 });
  });
  it('WHERE on functions still applies to binary payloads', () => {
    expect(out("SELECT * FROM 'a/+' WHERE topic(2) = 'x'", bytes, V2, 'a/x')).not.toBeNull();
    expect(out("SELECT * FROM 'a/+' WHERE topic(2) = 'x'", bytes, V2, 'a/y')).toBeNull();
  });
  it('attributes of a binary payload are Undefined', () => {
    expect(out("SELECT temperature FROM 'a'", bytes)).toBe('{}');
  });
});

describe('SQL versions [iot-sql-version]', () => {
  it('2015-10-08 is the default', () => {
    expect(compileSql("SELECT * FROM 'a'").version).toBe('2015-10-08');
  });
  it('whole-number decimals are Decimal in 2015-10-08 and Int in 2016-03-23', () => {
    expect(out("SELECT 10.0 AS x FROM 'a'", {}, V1)).toBe('{"x":10.0}');
    expect(out("SELECT 10.0 AS x FROM 'a'", {}, V2)).toBe('{"x":10}');
    expect(val('10.0 / 4', {}, V1)).toBe(2.5);
    expect(val('10.0 / 4', {}, V2)).toBe(2);
    expect(out("SELECT 2.5 * 2 AS x FROM 'a'", {}, V1)).toBe('{"x":5.0}');
    expect(out("SELECT 2.5 * 2 AS x FROM 'a'", {}, V2)).toBe('{"x":5}');
  });
  it('nested queries, literals, encode and cast to Bool/Decimal need 2016-03-23', () => {
    for (const sql of [
      "SELECT (SELECT VALUE v FROM e) AS x FROM 'a'",
      "SELECT {'a': 1} AS x FROM 'a'",
      "SELECT [1] AS x FROM 'a'",
      "SELECT encode(*, 'base64') AS d FROM 'a'",
      "SELECT cast(1 AS Bool) AS b FROM 'a'",
      "SELECT cast(1 AS Decimal) AS b FROM 'a'",
      "SELECT parse_time('yyyy', 0) AS b FROM 'a'",
    ]) {
      expect(() => compileSql(sql, V1), sql).toThrow(SqlParseError);
      expect(() => compileSql(sql, V2), sql).not.toThrow();
    }
  });
  it('cast to Double exists in both versions', () => {
    expect(out("SELECT cast('3' AS Double) AS d FROM 'a'", {}, V1)).toBe('{"d":3.0}');
    expect(val("cast('3.25' AS Double)", {}, V1)).toBe(3.25);
  });
  it('unknown versions are refused', () => {
    expect(() => compileSql("SELECT * FROM 'a'", '2020-01-01')).toThrow(SqlParseError);
  });
});

describe('parse errors point at the position [SqlParseException]', () => {
  const err = (sql: string, version: SqlVersion = V2) => {
    try {
      compileSql(sql, version);
    } catch (e) {
      expect(e).toBeInstanceOf(SqlParseError);
      return e as SqlParseError;
    }
    throw new Error(`parsed: ${sql}`);
  };
  it('reports the offset of the offending token', () => {
    expect(err("SELECT * FORM 'a'").position).toBe(9);
    expect(err("SELECT a + FROM 'a'").position).toBe(11);
    expect(err('SELECT * FROM a/b').position).toBe(14);
    expect(err("SELECT 'abc FROM 'a'").position).toBe(19);
    expect(err("SELECT nosuch(1) FROM 'a'").position).toBe(7);
    expect(err("SELECT abs(1, 2) FROM 'a'").message).toMatch(/takes 1 argument/);
    expect(err("SELECT * FROM 'a/#/b'").message).toMatch(/'#' must be the last level/);
    expect(err("SELECT CASE x END FROM 'a'").message).toMatch(/WHEN/);
    expect(err("SELECT get_thing_shadow('a', 'b', 'c') FROM 'a'").message).toMatch(/not supported/);
  });
  it('surfaces as SqlParseException (400)', () => {
    const e = err('SELEC');
    expect(e.name).toBe('SqlParseException');
    expect(e.spec.status).toBe(400);
  });
  it('keywords are case-insensitive', () => {
    expect(out("select color as c from 'a' where temperature > 1", { color: 'x', temperature: 2 })).toBe(
      '{"c":"x"}',
    );
  });
});

describe('robustness', () => {
  it('any input either compiles or throws SqlParseError (never another error)', async () => {
    const fc = await import('fast-check');
    const piece = fc.constantFrom(
      'SELECT',
      'VALUE',
      '*',
      'FROM',
      "'a/+'",
      'WHERE',
      'a',
      '.',
      'b',
      '(',
      ')',
      ',',
      '+',
      '-',
      '=',
      'AND',
      'CASE',
      'WHEN',
      'THEN',
      'END',
      '1',
      '2.5',
      "'x'",
      'abs',
      'get',
      '[',
      ']',
      '{',
      '}',
      ':',
      'AS',
      'NOT',
      'IN',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }), fc.string({ maxLength: 20 }), (parts, junk) => {
        for (const sql of [parts.join(' '), `SELECT ${parts.join(' ')} FROM 'a'`, junk]) {
          try {
            compileSql(sql, V2).evaluate({
              topic: 'a/b',
              payload: Buffer.from('{"a":{"b":1}}'),
              timestamp: 0,
            });
          } catch (e) {
            if (!(e instanceof SqlParseError)) throw e;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });
});
