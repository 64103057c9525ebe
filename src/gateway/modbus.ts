/**
 * The Modbus TCP driver (modbus-serial): polls one device's holding and input registers, coils and discrete
 * inputs on its interval and decodes each tag (int16/uint16/int32/uint32/float32/float64/bool/string, byte
 * and word order, scale and offset).
 *
 * Contract:
 * - Tags of one table are read in as few requests as the protocol allows (contiguous runs, at most 125
 *   registers or 2000 bits per request, gaps up to 16 registers bridged), one request at a time.
 * - Polls are scheduled at a fixed rate from the first; a poll that overruns its interval makes the next start
 *   at once and is counted (`overruns`), never queued up.
 * - Any failure (connect, timeout, exception response) closes the connection, marks the device down and
 *   reconnects on the backoff schedule (driver.ts); the first good read marks it up again.
 */
import { createRequire, Module } from 'node:module';
import type ModbusModule from 'modbus-serial';
import {
  Backoff,
  HealthTracker,
  scaled,
  type BackoffOptions,
  type DeviceHealth,
  type FieldDriver,
  type ReadingsHandler,
  type TagValue,
} from './driver.js';
import {
  registerCount,
  renderTopic,
  type ModbusDevice,
  type ModbusTable,
  type ModbusTag,
} from './mapping.js';

// modbus-serial is CommonJS whose module.exports is the client class (its typings describe a default export).
type ModbusClient = InstanceType<typeof ModbusModule.default>;
let ModbusRTU: (new () => ModbusClient) | null = null;

/**
 * modbus-serial's client class, loaded on the first connect (so importing this module, or the gateway with no
 * Modbus device, costs nothing). Its index eagerly requires `serialport`, an optional native dependency that only
 * serial RTU uses (about 7 MB of RSS in code and native bindings); this driver speaks Modbus TCP only, so while
 * modbus-serial loads, `serialport` behaves as not installed (the library's supported case: it wraps those
 * requires in try/catch). Nothing else is affected: the stand-in is removed again at once, and if serialport
 * is already loaded in the process it is left as it is.
 */
function modbusClient(): new () => ModbusClient {
  if (ModbusRTU) return ModbusRTU;
  const require = createRequire(import.meta.url);
  let serialPath: string | null = null;
  try {
    serialPath = createRequire(require.resolve('modbus-serial')).resolve('serialport');
  } catch {
    // serialport is not installed: nothing to keep out
  }
  const stub = serialPath !== null && !require.cache[serialPath] ? serialPath : null;
  if (stub) {
    const absent = new Module(stub);
    absent.filename = stub;
    absent.loaded = true;
    absent.exports = new Proxy(
      {},
      {
        get() {
          throw new Error('serialport is not loaded by the Modbus TCP driver');
        },
      },
    );
    require.cache[stub] = absent;
  }
  try {
    ModbusRTU = require('modbus-serial') as new () => ModbusClient;
  } finally {
    if (stub) delete require.cache[stub];
  }
  return ModbusRTU;
}

const MAX_REGISTERS = 125;
const MAX_BITS = 2000;
const BRIDGE_GAP = 16;

/** One read request and the tags it serves. */
export interface ReadPlan {
  readonly table: ModbusTable;
  readonly address: number;
  readonly count: number;
  readonly tags: readonly ModbusTag[];
}

/** Group tags into the fewest read requests (per table, contiguous runs within the protocol's limits). */
export function planReads(tags: readonly ModbusTag[]): ReadPlan[] {
  const plans: ReadPlan[] = [];
  for (const table of ['holding', 'input', 'coil', 'discrete'] as const) {
    const bits = table === 'coil' || table === 'discrete';
    const limit = bits ? MAX_BITS : MAX_REGISTERS;
    const sorted = tags.filter((t) => t.table === table).sort((a, b) => a.address - b.address);
    let run: { address: number; end: number; tags: ModbusTag[] } | null = null;
    for (const t of sorted) {
      const end = t.address + (bits ? 1 : registerCount(t));
      if (run && t.address <= run.end + BRIDGE_GAP && Math.max(run.end, end) - run.address <= limit) {
        run.end = Math.max(run.end, end);
        run.tags.push(t);
        continue;
      }
      if (run) plans.push({ table, address: run.address, count: run.end - run.address, tags: run.tags });
      run = { address: t.address, end, tags: [t] };
    }
    if (run) plans.push({ table, address: run.address, count: run.end - run.address, tags: run.tags });
  }
  return plans;
}

/**
 * Decode a tag from the registers it spans, as they came off the wire (2 bytes per register, big-endian).
 * Byte order swaps the bytes inside each register; word order reverses the registers of a multi-register
 * number (strings keep register order).
 * @example decodeRegisters({ type: 'float32', wordOrder: 'little', ... }, Buffer.from('0000 4148', 'hex')) === 12.5
 */
export function decodeRegisters(
  tag: Pick<ModbusTag, 'type' | 'byteOrder' | 'wordOrder' | 'bit' | 'length'>,
  wire: Buffer,
): number | string | boolean {
  const words = wire.length / 2;
  const b = Buffer.allocUnsafe(wire.length);
  for (let w = 0; w < words; w++) {
    const from = tag.wordOrder === 'little' && tag.type !== 'string' ? words - 1 - w : w;
    const hi = wire[from * 2]!;
    const lo = wire[from * 2 + 1]!;
    b[w * 2] = tag.byteOrder === 'little' ? lo : hi;
    b[w * 2 + 1] = tag.byteOrder === 'little' ? hi : lo;
  }
  switch (tag.type) {
    case 'int16':
      return b.readInt16BE(0);
    case 'uint16':
      return b.readUInt16BE(0);
    case 'int32':
      return b.readInt32BE(0);
    case 'uint32':
      return b.readUInt32BE(0);
    case 'float32':
      return b.readFloatBE(0);
    case 'float64':
      return b.readDoubleBE(0);
    case 'bool':
      return ((b.readUInt16BE(0) >> tag.bit) & 1) === 1;
    case 'string':
      return b.toString('latin1').replace(/[\0 ]+$/, '');
  }
}

export interface ModbusDriverOptions {
  readonly device: ModbusDevice;
  readonly gateway: string;
  readonly onReadings: ReadingsHandler;
  readonly onHealth: (h: DeviceHealth) => void;
  readonly backoff?: BackoffOptions;
}

export function createModbusDriver(options: ModbusDriverOptions): FieldDriver {
  const { device } = options;
  const plans = planReads(device.tags);
  const topics = new Map(
    device.tags.map((t) => [
      t,
      renderTopic(t.topic, { gateway: options.gateway, device: device.name, tag: t.name }),
    ]),
  );
  const health = new HealthTracker(device.name, 'modbus', options.onHealth);
  const backoff = new Backoff(options.backoff);
  let interval = device.pollIntervalMs;
  let client: ModbusClient | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let enabled = true;
  let nextAt = 0;
  /** Bumped by setEnabled: a poll still in flight from before a disable/enable never schedules another loop. */
  let generation = 0;

  const schedule = (delay: number) => {
    if (closed || !enabled) return;
    const gen = generation;
    timer = setTimeout(() => void tick(gen), Math.max(0, delay));
  };

  const disconnect = () => {
    const c = client;
    client = null;
    if (c) {
      try {
        c.close(() => undefined);
      } catch {
        // already closed
      }
    }
  };

  async function connect(): Promise<ModbusClient> {
    const c = new (modbusClient())();
    await c.connectTCP(device.host, { port: device.port });
    c.setID(device.unitId);
    c.setTimeout(device.timeoutMs);
    // A socket that closes under us (the device restarts) fails the next read; nothing to do here.
    (c as unknown as { _port?: { on?: (e: string, f: () => void) => void } })._port?.on?.(
      'error',
      () => undefined,
    );
    return c;
  }

  async function readPlan(c: ModbusClient, plan: ReadPlan, out: TagValue[]): Promise<void> {
    if (plan.table === 'coil' || plan.table === 'discrete') {
      const r =
        plan.table === 'coil'
          ? await c.readCoils(plan.address, plan.count)
          : await c.readDiscreteInputs(plan.address, plan.count);
      for (const t of plan.tags)
        out.push({
          tag: t.name,
          measure: t.measure,
          topic: topics.get(t)!,
          value: r.data[t.address - plan.address] === true,
        });
      return;
    }
    const r =
      plan.table === 'holding'
        ? await c.readHoldingRegisters(plan.address, plan.count)
        : await c.readInputRegisters(plan.address, plan.count);
    const buf = r.buffer;
    if (buf.length < plan.count * 2)
      throw new Error(`short response: ${buf.length} bytes for ${plan.count} registers at ${plan.address}`);
    for (const t of plan.tags) {
      const from = (t.address - plan.address) * 2;
      const value = decodeRegisters(t, buf.subarray(from, from + registerCount(t) * 2));
      if (typeof value === 'number' && !Number.isFinite(value)) continue; // NaN/Infinity floats carry no measure
      out.push({
        tag: t.name,
        measure: t.measure,
        topic: topics.get(t)!,
        value: scaled(value, t.scale, t.offset),
      });
    }
  }

  async function tick(gen: number): Promise<void> {
    timer = null;
    if (closed || !enabled || gen !== generation) return;
    const started = Date.now();
    try {
      if (!client) {
        health.set(health.state === 'down' ? 'down' : 'connecting');
        client = await connect();
      }
      const values: TagValue[] = [];
      for (const plan of plans) await readPlan(client, plan, values);
      if (closed || gen !== generation) return;
      backoff.reset();
      health.ok(started);
      options.onReadings(device.name, started, values);
      // Fixed rate: the next poll is due one interval after the previous due time.
      nextAt = (nextAt === 0 ? started : nextAt) + interval;
      const now = Date.now();
      if (nextAt < now) {
        health.overruns++;
        nextAt = now;
      }
      schedule(nextAt - now);
    } catch (err) {
      if (gen !== generation) return;
      disconnect();
      if (closed) return;
      const delay = backoff.next();
      const e = err as { message?: string; errno?: string; modbusCode?: number };
      health.fail(
        `${e.errno ?? (e.modbusCode !== undefined ? `exception ${e.modbusCode}` : 'error')}: ${e.message ?? String(err)} (${device.host}:${device.port})`,
        Date.now() + delay,
      );
      nextAt = 0;
      schedule(delay);
    }
  }

  return {
    device: device.name,
    start: () => schedule(0),
    health: () => health.snapshot(),
    setInterval(ms: number) {
      interval = ms;
      return true;
    },
    setEnabled(on: boolean) {
      if (on === enabled) return;
      enabled = on;
      generation++;
      if (!on) {
        if (timer) clearTimeout(timer);
        timer = null;
        disconnect();
        health.set('disabled');
      } else {
        health.set('connecting');
        nextAt = 0;
        schedule(0);
      }
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      disconnect();
    },
  };
}
