/**
 * The mapping file: which field devices the gateway reads, which tags on each, and how each tag becomes a
 * measure on an upstream MQTT topic. JSON (with `//` comments; YAML is not a dependency), checked whole
 * before the gateway starts: every problem is reported with its line and column, unknown keys included
 * (a typo is refused, never ignored).
 *
 *   { "devices": [
 *       { "name": "plc-1", "protocol": "modbus", "host": "10.0.0.5", "port": 502, "unitId": 1,
 *         "pollIntervalMs": 1000,
 *         "tags": [ { "name": "temperature", "table": "holding", "address": 0, "type": "float32",
 *                     "wordOrder": "little", "scale": 0.1 } ] },
 *       { "name": "line-2", "protocol": "opcua", "endpoint": "opc.tcp://10.0.0.6:4840",
 *         "securityMode": "SignAndEncrypt", "securityPolicy": "Basic256Sha256",
 *         "tags": [ { "name": "speed", "nodeId": "ns=1;s=Speed", "samplingIntervalMs": 250 } ] },
 *       { "name": "lan", "protocol": "mqtt",
 *         "tags": [ { "name": "humidity", "subscribe": "sensors/+/humidity", "field": "value" } ] } ],
 *     "local": { "port": 1883, "users": [ { "username": "sensor", "password": "...",
 *                                           "publish": ["sensors/#"], "subscribe": [] } ] } }
 *
 * Topics: each tag's `topic` (default: its device's, default `things/{gateway}/field/{device}`) may use
 * `{gateway}`, `{device}` and `{tag}`; tags of one device read in one poll that share a topic travel as one
 * message whose members are their measures (`measure`, default the tag name).
 */
import { LocatedJsonError, parseLocated, type LocatedValue, type Position } from './located-json.js';

export const DATA_TYPES = [
  'int16',
  'uint16',
  'int32',
  'uint32',
  'float32',
  'float64',
  'bool',
  'string',
] as const;
export type DataType = (typeof DATA_TYPES)[number];
export const MODBUS_TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
export type ModbusTable = (typeof MODBUS_TABLES)[number];
export type Endian = 'big' | 'little';
export const SECURITY_MODES = ['None', 'Sign', 'SignAndEncrypt'] as const;
export type SecurityMode = (typeof SECURITY_MODES)[number];
export const SECURITY_POLICIES = [
  'None',
  'Basic128Rsa15',
  'Basic256',
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
] as const;
export type SecurityPolicy = (typeof SECURITY_POLICIES)[number];

interface TagBase {
  readonly name: string;
  readonly measure: string;
  /** The upstream topic template (placeholders resolved by `renderTopic`). */
  readonly topic: string;
  readonly scale: number;
  readonly offset: number;
}

export interface ModbusTag extends TagBase {
  readonly table: ModbusTable;
  readonly address: number;
  readonly type: DataType;
  /** Registers a string spans (2 characters each); 1..125. */
  readonly length: number;
  /** For `bool` from a holding or input register: the bit (0 = least significant). */
  readonly bit: number;
  /** Byte order inside each 16-bit register (`big`: AB, the Modbus default). */
  readonly byteOrder: Endian;
  /** Word order of multi-register values (`big`: the most significant register first). */
  readonly wordOrder: Endian;
}

export interface OpcuaTag extends TagBase {
  readonly nodeId: string;
  readonly samplingIntervalMs: number;
}

export interface MqttTag extends TagBase {
  /** The local topic filter LAN devices publish on. */
  readonly subscribe: string;
  /** Dotted path into a JSON payload; absent: the payload itself is the value (a number or text). */
  readonly field: string | null;
}

export interface ModbusDevice {
  readonly protocol: 'modbus';
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly unitId: number;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
  readonly tags: readonly ModbusTag[];
}

export interface OpcuaDevice {
  readonly protocol: 'opcua';
  readonly name: string;
  readonly endpoint: string;
  readonly securityMode: SecurityMode;
  readonly securityPolicy: SecurityPolicy;
  readonly username: string | null;
  readonly password: string | null;
  readonly publishingIntervalMs: number;
  readonly tags: readonly OpcuaTag[];
}

export interface MqttDevice {
  readonly protocol: 'mqtt';
  readonly name: string;
  readonly tags: readonly MqttTag[];
}

export type FieldDevice = ModbusDevice | OpcuaDevice | MqttDevice;

export interface LocalUser {
  readonly username: string;
  readonly password: string;
  /** Topic filters this user may publish to (MQTT wildcards). */
  readonly publish: readonly string[];
  /** Topic filters this user may subscribe to. */
  readonly subscribe: readonly string[];
}

export interface LocalListener {
  readonly host: string;
  readonly port: number;
  readonly users: readonly LocalUser[];
}

export interface Mapping {
  readonly devices: readonly FieldDevice[];
  readonly local: LocalListener | null;
}

/** One problem in a mapping file, where it is. */
export interface MappingProblem {
  readonly at: Position;
  readonly path: string;
  readonly reason: string;
}

/** A refused mapping: every problem found, each with its line and column. */
export class MappingError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly MappingProblem[],
  ) {
    super(
      `mapping ${file} refused (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems
          .map((p) => `  ${file}:${p.at.line}:${p.at.column}: ${p.path ? `${p.path}: ` : ''}${p.reason}`)
          .join('\n'),
    );
  }
}

const TOPIC_PLACEHOLDERS = ['gateway', 'device', 'tag'];
export const DEFAULT_TOPIC = 'things/{gateway}/field/{device}';

/** Registers a value of this type spans. */
export function registerCount(tag: Pick<ModbusTag, 'type' | 'length'>): number {
  switch (tag.type) {
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'float64':
      return 4;
    case 'string':
      return tag.length;
    default:
      return 1;
  }
}

/** Resolve a topic template for one tag. */
export function renderTopic(
  template: string,
  names: { gateway: string; device: string; tag: string },
): string {
  return template.replace(/\{(gateway|device|tag)\}/g, (_, k: 'gateway' | 'device' | 'tag') => names[k]);
}

/**
 * Parse and check a mapping. Throws MappingError naming every problem with `file:line:column`.
 * @example const mapping = parseMapping(readFileSync('mapping.json', 'utf8'), 'mapping.json');
 */
export function parseMapping(text: string, file = 'mapping'): Mapping {
  let root: LocatedValue;
  try {
    root = parseLocated(text);
  } catch (err) {
    if (err instanceof LocatedJsonError)
      throw new MappingError(file, [{ at: err.at, path: '', reason: `not valid JSON: ${err.reason}` }]);
    throw err;
  }
  const problems: MappingProblem[] = [];
  const mapping = new Checker(problems).mapping(root);
  problems.sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column);
  if (problems.length > 0) throw new MappingError(file, problems.slice(0, 50));
  return mapping!;
}

type Obj = Extract<LocatedValue, { kind: 'object' }>;

/** Walks the located tree, collecting problems instead of stopping at the first. */
class Checker {
  constructor(private readonly problems: MappingProblem[]) {}

  private problem(at: Position, path: string, reason: string): void {
    this.problems.push({ at, path, reason });
  }

  private object(node: LocatedValue, path: string, known: readonly string[]): Obj | null {
    if (node.kind !== 'object') {
      this.problem(node.at, path, `must be an object, not ${kindName(node)}`);
      return null;
    }
    for (const [key, entry] of node.entries)
      if (!known.includes(key))
        this.problem(entry.keyAt, path, `unknown key "${key}" (known here: ${known.join(', ')})`);
    return node;
  }

  private str(
    o: Obj,
    key: string,
    path: string,
    opts: { required?: boolean; oneOf?: readonly string[]; re?: RegExp; what?: string } = {},
  ): string | null {
    const e = o.entries.get(key);
    if (!e) {
      if (opts.required) this.problem(o.at, path, `"${key}" is required`);
      return null;
    }
    const v = e.value;
    if (v.kind !== 'string') {
      this.problem(v.at, `${path}.${key}`, `must be a string, not ${kindName(v)}`);
      return null;
    }
    if (opts.oneOf && !opts.oneOf.includes(v.value)) {
      this.problem(
        v.at,
        `${path}.${key}`,
        `${JSON.stringify(v.value)} is not one of ${opts.oneOf.join(', ')}`,
      );
      return null;
    }
    if (opts.re && !opts.re.test(v.value)) {
      this.problem(
        v.at,
        `${path}.${key}`,
        `${JSON.stringify(v.value)} is not ${opts.what ?? `a match for ${opts.re}`}`,
      );
      return null;
    }
    return v.value;
  }

  private num(
    o: Obj,
    key: string,
    path: string,
    opts: { integer?: boolean; min?: number; max?: number } = {},
  ): number | null {
    const e = o.entries.get(key);
    if (!e) return null;
    const v = e.value;
    if (v.kind !== 'number') {
      this.problem(v.at, `${path}.${key}`, `must be a number, not ${kindName(v)}`);
      return null;
    }
    if (opts.integer && !Number.isInteger(v.value)) {
      this.problem(v.at, `${path}.${key}`, `must be a whole number, not ${v.value}`);
      return null;
    }
    if ((opts.min !== undefined && v.value < opts.min) || (opts.max !== undefined && v.value > opts.max)) {
      this.problem(
        v.at,
        `${path}.${key}`,
        `${v.value} is outside ${opts.min ?? '-inf'}..${opts.max ?? 'inf'}`,
      );
      return null;
    }
    return v.value;
  }

  private strings(o: Obj, key: string, path: string, check: (s: string) => string | null): string[] {
    const e = o.entries.get(key);
    if (!e) return [];
    if (e.value.kind !== 'array') {
      this.problem(e.value.at, `${path}.${key}`, `must be an array of strings, not ${kindName(e.value)}`);
      return [];
    }
    const out: string[] = [];
    e.value.items.forEach((item, idx) => {
      if (item.kind !== 'string') this.problem(item.at, `${path}.${key}[${idx}]`, 'must be a string');
      else {
        const why = check(item.value);
        if (why) this.problem(item.at, `${path}.${key}[${idx}]`, why);
        else out.push(item.value);
      }
    });
    return out;
  }

  private topic(o: Obj, key: string, path: string, fallback: string): string {
    const t = this.str(o, key, path);
    if (t === null) return fallback;
    const why = checkTopicTemplate(t);
    if (why) this.problem(o.entries.get(key)!.value.at, `${path}.${key}`, why);
    return t;
  }

  mapping(root: LocatedValue): Mapping | null {
    const o = this.object(root, '', ['devices', 'local']);
    if (!o) return null;
    const devicesNode = o.entries.get('devices');
    const devices: FieldDevice[] = [];
    if (!devicesNode) this.problem(o.at, '', '"devices" is required (an array of field devices)');
    else if (devicesNode.value.kind !== 'array')
      this.problem(devicesNode.value.at, 'devices', `must be an array, not ${kindName(devicesNode.value)}`);
    else {
      const seen = new Map<string, Position>();
      devicesNode.value.items.forEach((item, idx) => {
        const d = this.device(item, `devices[${idx}]`);
        if (!d) return;
        const before = seen.get(d.name);
        if (before)
          this.problem(
            item.at,
            `devices[${idx}].name`,
            `device name "${d.name}" is already used at line ${before.line}`,
          );
        seen.set(d.name, item.at);
        devices.push(d);
      });
    }
    const localNode = o.entries.get('local');
    const local = localNode ? this.local(localNode.value, 'local') : null;
    if (devices.some((d) => d.protocol === 'mqtt') && !localNode)
      this.problem(
        o.at,
        '',
        'devices with protocol "mqtt" read from the local listener: add a "local" section',
      );
    return { devices, local };
  }

  private device(node: LocatedValue, path: string): FieldDevice | null {
    if (node.kind !== 'object') {
      this.problem(node.at, path, `must be an object, not ${kindName(node)}`);
      return null;
    }
    const protocol = this.str(node, 'protocol', path, { required: true, oneOf: ['modbus', 'opcua', 'mqtt'] });
    if (protocol === 'modbus') return this.modbus(node, path);
    if (protocol === 'opcua') return this.opcua(node, path);
    if (protocol === 'mqtt') return this.mqttDevice(node, path);
    return null;
  }

  private name(o: Obj, path: string): string {
    return (
      this.str(o, 'name', path, {
        required: true,
        re: /^[A-Za-z0-9_.:-]{1,128}$/,
        what: 'a name of 1..128 letters, digits, _ . : -',
      }) ?? '?'
    );
  }

  private tags<T>(o: Obj, path: string, each: (t: Obj, path: string) => T | null): T[] {
    const e = o.entries.get('tags');
    if (!e) {
      this.problem(o.at, path, '"tags" is required (an array of tags)');
      return [];
    }
    if (e.value.kind !== 'array') {
      this.problem(e.value.at, `${path}.tags`, `must be an array, not ${kindName(e.value)}`);
      return [];
    }
    const out: T[] = [];
    const seen = new Set<string>();
    e.value.items.forEach((item, idx) => {
      const p = `${path}.tags[${idx}]`;
      if (item.kind !== 'object') return this.problem(item.at, p, `must be an object, not ${kindName(item)}`);
      const t = each(item, p);
      if (t === null) return;
      const name = (t as { name: string }).name;
      if (seen.has(name))
        this.problem(item.at, `${p}.name`, `tag name "${name}" is used twice in this device`);
      seen.add(name);
      out.push(t);
    });
    return out;
  }

  private tagBase(t: Obj, p: string, deviceTopic: string): TagBase {
    const name = this.name(t, p);
    return {
      name,
      measure:
        this.str(t, 'measure', p, {
          re: /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
          what: 'a measure name (letters, digits, _)',
        }) ?? (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : name.replace(/[^A-Za-z0-9_]/g, '_')),
      topic: this.topic(t, 'topic', p, deviceTopic),
      scale: this.num(t, 'scale', p) ?? 1,
      offset: this.num(t, 'offset', p) ?? 0,
    };
  }

  private modbus(o: Obj, path: string): ModbusDevice | null {
    const keys = [
      'name',
      'protocol',
      'host',
      'port',
      'unitId',
      'pollIntervalMs',
      'timeoutMs',
      'topic',
      'byteOrder',
      'wordOrder',
      'tags',
    ];
    this.object(o, path, keys);
    const orders = ['big', 'little'] as const;
    const byteOrder = (this.str(o, 'byteOrder', path, { oneOf: orders }) ?? 'big') as Endian;
    const wordOrder = (this.str(o, 'wordOrder', path, { oneOf: orders }) ?? 'big') as Endian;
    const topic = this.topic(o, 'topic', path, DEFAULT_TOPIC);
    const tagKeys = [
      'name',
      'measure',
      'topic',
      'scale',
      'offset',
      'table',
      'address',
      'type',
      'length',
      'bit',
      'byteOrder',
      'wordOrder',
    ];
    const tags = this.tags(o, path, (t, p) => {
      this.object(t, p, tagKeys);
      const table = (this.str(t, 'table', p, { required: true, oneOf: MODBUS_TABLES }) ??
        'holding') as ModbusTable;
      const type = (this.str(t, 'type', p, { oneOf: DATA_TYPES }) ??
        (table === 'coil' || table === 'discrete' ? 'bool' : 'uint16')) as DataType;
      const address = this.num(t, 'address', p, { integer: true, min: 0, max: 65535 });
      if (address === null && !t.entries.has('address')) this.problem(t.at, p, '"address" is required');
      if ((table === 'coil' || table === 'discrete') && type !== 'bool')
        this.problem(
          t.entries.get('type')!.value.at,
          `${p}.type`,
          `a ${table} is one bit: its type is bool, not ${type}`,
        );
      const length = this.num(t, 'length', p, { integer: true, min: 1, max: 125 });
      if (type === 'string' && length === null)
        this.problem(t.at, p, 'a string tag needs "length" (the registers it spans, 2 characters each)');
      if (type !== 'string' && length !== null)
        this.problem(t.entries.get('length')!.value.at, `${p}.length`, 'only string tags take a length');
      const bit = this.num(t, 'bit', p, { integer: true, min: 0, max: 15 });
      if (bit !== null && (type !== 'bool' || table === 'coil' || table === 'discrete'))
        this.problem(
          t.entries.get('bit')!.value.at,
          `${p}.bit`,
          'only bool tags read from a holding or input register take a bit',
        );
      const base = this.tagBase(t, p, topic);
      const tag: ModbusTag = {
        ...base,
        table,
        type,
        address: address ?? 0,
        length: length ?? 1,
        bit: bit ?? 0,
        byteOrder: (this.str(t, 'byteOrder', p, { oneOf: orders }) ?? byteOrder) as Endian,
        wordOrder: (this.str(t, 'wordOrder', p, { oneOf: orders }) ?? wordOrder) as Endian,
      };
      if (address !== null && address + registerCount(tag) > 65536)
        this.problem(
          t.entries.get('address')!.value.at,
          `${p}.address`,
          `the value spans ${registerCount(tag)} registers from ${address}, past 65535`,
        );
      return tag;
    });
    return {
      protocol: 'modbus',
      name: this.name(o, path),
      host: this.str(o, 'host', path, { required: true }) ?? '',
      port: this.num(o, 'port', path, { integer: true, min: 1, max: 65535 }) ?? 502,
      unitId: this.num(o, 'unitId', path, { integer: true, min: 0, max: 255 }) ?? 1,
      pollIntervalMs:
        this.num(o, 'pollIntervalMs', path, { integer: true, min: 10, max: 86_400_000 }) ?? 1000,
      timeoutMs: this.num(o, 'timeoutMs', path, { integer: true, min: 100, max: 60_000 }) ?? 2000,
      tags,
    };
  }

  private opcua(o: Obj, path: string): OpcuaDevice | null {
    this.object(o, path, [
      'name',
      'protocol',
      'endpoint',
      'securityMode',
      'securityPolicy',
      'username',
      'password',
      'publishingIntervalMs',
      'topic',
      'tags',
    ]);
    const securityMode = (this.str(o, 'securityMode', path, { oneOf: SECURITY_MODES }) ??
      'None') as SecurityMode;
    const securityPolicy = (this.str(o, 'securityPolicy', path, { oneOf: SECURITY_POLICIES }) ??
      (securityMode === 'None' ? 'None' : 'Basic256Sha256')) as SecurityPolicy;
    if ((securityMode === 'None') !== (securityPolicy === 'None'))
      this.problem(
        o.entries.get('securityPolicy')?.value.at ?? o.at,
        `${path}.securityPolicy`,
        `securityMode ${securityMode} needs ${securityMode === 'None' ? 'securityPolicy None' : 'a securityPolicy other than None'}`,
      );
    const username = this.str(o, 'username', path);
    const password = this.str(o, 'password', path);
    if ((username === null) !== (password === null))
      this.problem(o.at, path, 'give both "username" and "password", or neither');
    const topic = this.topic(o, 'topic', path, DEFAULT_TOPIC);
    const tags = this.tags(o, path, (t, p) => {
      this.object(t, p, ['name', 'measure', 'topic', 'scale', 'offset', 'nodeId', 'samplingIntervalMs']);
      return {
        ...this.tagBase(t, p, topic),
        nodeId:
          this.str(t, 'nodeId', p, {
            required: true,
            re: /^(ns=\d+;)?[isgb]=.+$/,
            what: 'an OPC UA node id (ns=<n>;s=<name>, i=<n>, g=<guid>, b=<base64>)',
          }) ?? '',
        samplingIntervalMs: this.num(t, 'samplingIntervalMs', p, { min: 0, max: 86_400_000 }) ?? 1000,
      };
    });
    return {
      protocol: 'opcua',
      name: this.name(o, path),
      endpoint:
        this.str(o, 'endpoint', path, {
          required: true,
          re: /^opc\.tcp:\/\/[^/\s]+/,
          what: 'an opc.tcp://host:port URL',
        }) ?? '',
      securityMode,
      securityPolicy,
      username,
      password,
      publishingIntervalMs: this.num(o, 'publishingIntervalMs', path, { min: 10, max: 3_600_000 }) ?? 1000,
      tags,
    };
  }

  private mqttDevice(o: Obj, path: string): MqttDevice | null {
    this.object(o, path, ['name', 'protocol', 'topic', 'tags']);
    const topic = this.topic(o, 'topic', path, DEFAULT_TOPIC);
    const tags = this.tags(o, path, (t, p) => {
      this.object(t, p, ['name', 'measure', 'topic', 'scale', 'offset', 'subscribe', 'field']);
      const subscribe = this.str(t, 'subscribe', p, { required: true }) ?? '';
      const why = checkFilter(subscribe);
      if (subscribe && why) this.problem(t.entries.get('subscribe')!.value.at, `${p}.subscribe`, why);
      return {
        ...this.tagBase(t, p, topic),
        subscribe,
        field: this.str(t, 'field', p, {
          re: /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
          what: 'a dotted path like "a.b"',
        }),
      };
    });
    return { protocol: 'mqtt', name: this.name(o, path), tags };
  }

  private local(node: LocatedValue, path: string): LocalListener | null {
    const o = this.object(node, path, ['host', 'port', 'users']);
    if (!o) return null;
    const users: LocalUser[] = [];
    const u = o.entries.get('users');
    if (!u || u.value.kind !== 'array' || u.value.items.length === 0)
      this.problem(
        u?.value.at ?? o.at,
        `${path}.users`,
        'the local listener needs at least one user (no anonymous access on the LAN)',
      );
    else
      u.value.items.forEach((item, idx) => {
        const p = `${path}.users[${idx}]`;
        const uo = this.object(item, p, ['username', 'password', 'publish', 'subscribe']);
        if (!uo) return;
        const password = this.str(uo, 'password', p, { required: true }) ?? '';
        if (password && password.length < 8)
          this.problem(uo.entries.get('password')!.value.at, `${p}.password`, 'use at least 8 characters');
        users.push({
          username: this.str(uo, 'username', p, { required: true }) ?? '',
          password,
          publish: this.strings(uo, 'publish', p, checkFilter),
          subscribe: this.strings(uo, 'subscribe', p, checkFilter),
        });
      });
    return {
      host: this.str(o, 'host', path) ?? '0.0.0.0',
      port: this.num(o, 'port', path, { integer: true, min: 0, max: 65535 }) ?? 1883,
      users,
    };
  }
}

function kindName(v: LocatedValue): string {
  return v.kind === 'array'
    ? 'an array'
    : v.kind === 'object'
      ? 'an object'
      : v.kind === 'null'
        ? 'null'
        : `a ${v.kind}`;
}

/** Why an upstream topic template is unusable, or null. */
function checkTopicTemplate(t: string): string | null {
  if (t === '') return 'a topic cannot be empty';
  if (/[#+]/.test(t)) return 'a topic to publish on cannot hold the wildcards + or #';
  if (t.startsWith('$')) return 'topics starting with $ are reserved for the platform';
  for (const m of t.matchAll(/\{([^}]*)\}/g))
    if (!TOPIC_PLACEHOLDERS.includes(m[1]!))
      return `unknown placeholder {${m[1]}} (known: {gateway}, {device}, {tag})`;
  return null;
}

/** Why a topic filter is invalid, or null ([MQTT-4.7.1-2], [MQTT-4.7.1-3]). */
function checkFilter(f: string): string | null {
  if (f === '') return 'a topic filter cannot be empty';
  const levels = f.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return '# must be a whole last level';
    if (l.includes('+') && l !== '+') return '+ must be a whole level';
  }
  return null;
}
