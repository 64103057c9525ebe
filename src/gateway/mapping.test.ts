import { describe, expect, it } from 'vitest';
import { MappingError, parseMapping, renderTopic } from './mapping.js';
import { parseLocated, plainOf } from './located-json.js';

const refused = (text: string): MappingError => {
  try {
    parseMapping(text, 'm.json');
  } catch (err) {
    expect(err).toBeInstanceOf(MappingError);
    return err as MappingError;
  }
  throw new Error('the mapping was accepted');
};

describe('located JSON', () => {
  it('parses what JSON.parse parses, with comments', () => {
    const text = '// a comment\n{"a": [1, -2.5e3, "x\\n\\u00e9", true, false, null, {}, []], "b": {"c": {}}}';
    expect(plainOf(parseLocated(text))).toEqual(JSON.parse(text.split('\n')[1]!));
  });
  it('names the line and column of a syntax error', () => {
    expect(() => parseLocated('{\n  "a": 1,\n  "b" 2\n}')).toThrow(/^3:7: expected ':' after key "b"/);
    expect(() => parseLocated('[1, 2,]')).toThrow(/^1:7: trailing comma/);
    expect(() => parseLocated('{"a": 1} x')).toThrow(/^1:10: unexpected "x"/);
    expect(() => parseLocated('{"a": "open')).toThrow(/^1:7: unterminated string/);
    expect(() => parseLocated('{"a": 1, "a": 2}')).toThrow(/^1:10: duplicate key "a"/);
    expect(() => parseLocated('')).toThrow(/expected a value, found the end of the file/);
  });
  it('does not recurse on deep nesting', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(parseLocated(deep).kind).toBe('array');
  });
});

describe('mapping', () => {
  const good = `{
    // one of each protocol
    "devices": [
      { "name": "plc-1", "protocol": "modbus", "host": "127.0.0.1", "port": 5020, "pollIntervalMs": 200,
        "wordOrder": "little",
        "tags": [
          { "name": "temperature", "table": "holding", "address": 0, "type": "float32", "scale": 0.5 },
          { "name": "running", "table": "coil", "address": 3 },
          { "name": "alarm", "table": "input", "address": 9, "type": "bool", "bit": 4 },
          { "name": "serial", "table": "holding", "address": 20, "type": "string", "length": 4, "topic": "things/{gateway}/{device}/{tag}" }
        ] },
      { "name": "line-2", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840", "securityMode": "Sign",
        "tags": [ { "name": "speed", "nodeId": "ns=1;s=Speed", "samplingIntervalMs": 100 } ] },
      { "name": "lan", "protocol": "mqtt", "tags": [ { "name": "hum", "subscribe": "sensors/+/hum", "field": "v.x" } ] }
    ],
    "local": { "port": 0, "users": [ { "username": "s", "password": "longenough", "publish": ["sensors/#"] } ] }
  }`;

  it('accepts a good mapping with defaults filled in', () => {
    const m = parseMapping(good, 'm.json');
    expect(m.devices).toHaveLength(3);
    const plc = m.devices[0]!;
    if (plc.protocol !== 'modbus') throw new Error('order');
    expect(plc).toMatchObject({ unitId: 1, timeoutMs: 2000, pollIntervalMs: 200 });
    expect(plc.tags[0]).toMatchObject({
      type: 'float32',
      wordOrder: 'little',
      byteOrder: 'big',
      scale: 0.5,
      measure: 'temperature',
    });
    expect(plc.tags[1]).toMatchObject({ type: 'bool', table: 'coil' });
    expect(plc.tags[3]!.topic).toBe('things/{gateway}/{device}/{tag}');
    expect(m.devices[1]).toMatchObject({ securityMode: 'Sign', securityPolicy: 'Basic256Sha256' });
    expect(m.local).toMatchObject({ port: 0, host: '0.0.0.0' });
    expect(renderTopic(plc.tags[0]!.topic, { gateway: 'gw', device: 'plc-1', tag: 't' })).toBe(
      'things/gw/field/plc-1',
    );
  });

  it('refuses a bad type with its line and column, and every other problem too', () => {
    const text = [
      '{ "devices": [',
      '  { "name": "plc", "protocol": "modbus", "host": "h",',
      '    "tags": [ { "name": "t", "table": "holding", "address": 0, "type": "float" },',
      '              { "name": "c", "table": "coil", "address": 1, "type": "int16" },',
      '              { "name": "s", "table": "holding", "address": 2, "type": "string" },',
      '              { "name": "x", "table": "holding", "adress": 2 } ] } ] }',
    ].join('\n');
    const err = refused(text);
    expect(err.problems.map((p) => `${p.at.line}:${p.at.column}`)).toEqual([
      '3:72',
      '4:69',
      '5:15',
      '6:15',
      '6:50',
    ]);
    expect(err.message).toContain(
      'm.json:3:72: devices[0].tags[0].type: "float" is not one of int16, uint16',
    );
    expect(err.message).toContain(
      'm.json:4:69: devices[0].tags[1].type: a coil is one bit: its type is bool, not int16',
    );
    expect(err.message).toContain('m.json:6:50: devices[0].tags[3]: unknown key "adress"');
  });

  it('refuses syntax errors, unknown protocols, bad topics and duplicate names at their place', () => {
    expect(refused('{ "devices": [ }').message).toMatch(
      /m\.json:1:16: not valid JSON: expected a value, found "}"/,
    );
    expect(refused('{"devices": [{"name": "a", "protocol": "bacnet", "tags": []}]}').message).toMatch(
      /1:40: devices\[0\]\.protocol: "bacnet" is not one of modbus, opcua, mqtt/,
    );
    expect(
      refused('{"devices": [{"name": "a", "protocol": "modbus", "host": "h", "topic": "a/+/b", "tags": []}]}')
        .message,
    ).toMatch(/1:72: devices\[0\]\.topic: a topic to publish on cannot hold the wildcards/);
    expect(
      refused(
        '{"devices": [{"name": "a", "protocol": "modbus", "host": "h", "topic": "x/{site}", "tags": []}]}',
      ).message,
    ).toMatch(/unknown placeholder \{site\}/);
    const dup = refused(
      '{"devices": [\n{"name": "a", "protocol": "modbus", "host": "h", "tags": []},\n{"name": "a", "protocol": "modbus", "host": "h", "tags": []}]}',
    );
    expect(dup.message).toMatch(/3:1: devices\[1\]\.name: device name "a" is already used at line 2/);
    expect(refused('{"devices": [{"name": "l", "protocol": "mqtt", "tags": []}]}').message).toMatch(
      /add a "local" section/,
    );
    expect(
      refused('{"devices": [], "local": {"users": [{"username": "u", "password": "short"}]}}').message,
    ).toMatch(/password: use at least 8 characters/);
    expect(
      refused(
        '{"devices": [{"name": "o", "protocol": "opcua", "endpoint": "http://x", "tags": [{"name": "n", "nodeId": "Speed"}]}]}',
      ).message,
    ).toMatch(
      /1:61: devices\[0\]\.endpoint: "http:\/\/x" is not an opc\.tcp:\/\/host:port URL[\s\S]*1:106: devices\[0\]\.tags\[0\]\.nodeId: "Speed" is not an OPC UA node id/,
    );
  });
});
