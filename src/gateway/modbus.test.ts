import { describe, expect, it } from 'vitest';
import { decodeRegisters, planReads } from './modbus.js';
import type { ModbusTag } from './mapping.js';

const tag = (over: Partial<ModbusTag>): ModbusTag => ({
  name: 't',
  measure: 't',
  topic: 'x',
  scale: 1,
  offset: 0,
  table: 'holding',
  address: 0,
  type: 'uint16',
  length: 1,
  bit: 0,
  byteOrder: 'big',
  wordOrder: 'big',
  ...over,
});
const hex = (h: string) => Buffer.from(h.replace(/ /g, ''), 'hex');

describe('Modbus decoding', () => {
  it('decodes every type in every byte and word order', () => {
    // 12.5 as float32 is 0x41480000: ABCD on the wire in big/big
    expect(decodeRegisters(tag({ type: 'float32' }), hex('4148 0000'))).toBe(12.5);
    expect(decodeRegisters(tag({ type: 'float32', wordOrder: 'little' }), hex('0000 4148'))).toBe(12.5); // CDAB
    expect(decodeRegisters(tag({ type: 'float32', byteOrder: 'little' }), hex('4841 0000'))).toBe(12.5); // BADC
    expect(
      decodeRegisters(tag({ type: 'float32', byteOrder: 'little', wordOrder: 'little' }), hex('0000 4841')),
    ).toBe(12.5); // DCBA
    expect(decodeRegisters(tag({ type: 'int16' }), hex('fffe'))).toBe(-2);
    expect(decodeRegisters(tag({ type: 'uint16' }), hex('fffe'))).toBe(65534);
    expect(decodeRegisters(tag({ type: 'int32' }), hex('ffff fffd'))).toBe(-3);
    expect(decodeRegisters(tag({ type: 'uint32', wordOrder: 'little' }), hex('0002 0001'))).toBe(0x00010002);
    expect(decodeRegisters(tag({ type: 'float64' }), hex('4009 21fb 5444 2d18'))).toBe(Math.PI);
    expect(decodeRegisters(tag({ type: 'float64', wordOrder: 'little' }), hex('2d18 5444 21fb 4009'))).toBe(
      Math.PI,
    );
    expect(decodeRegisters(tag({ type: 'bool', bit: 4 }), hex('0010'))).toBe(true);
    expect(decodeRegisters(tag({ type: 'bool', bit: 3 }), hex('0010'))).toBe(false);
    expect(decodeRegisters(tag({ type: 'string', length: 3 }), hex('4757 2d31 0000'))).toBe('GW-1');
    expect(decodeRegisters(tag({ type: 'string', length: 2, byteOrder: 'little' }), hex('5747 312d'))).toBe(
      'GW-1',
    );
  });

  it('reads tags in the fewest requests within the protocol limits', () => {
    const plans = planReads([
      tag({ name: 'a', address: 0, type: 'float32' }),
      tag({ name: 'b', address: 10 }), // gap of 8: bridged
      tag({ name: 'c', address: 100 }), // far: a new request
      tag({ name: 'd', address: 5, table: 'input' }),
      tag({ name: 'e', address: 0, table: 'coil', type: 'bool' }),
      tag({ name: 'f', address: 1999, table: 'coil', type: 'bool' }),
      ...Array.from({ length: 130 }, (_, i) => tag({ name: `r${i}`, address: 1000 + i })), // past 125 registers
    ]);
    const summary = plans.map((p) => `${p.table}@${p.address}+${p.count}`);
    expect(summary).toEqual([
      'holding@0+11',
      'holding@100+1',
      'holding@1000+125',
      'holding@1125+5',
      'input@5+1',
      'coil@0+1',
      'coil@1999+1',
    ]);
  });
});
