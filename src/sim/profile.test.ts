import { describe, expect, it } from 'vitest';
import { parseProfile, ProfileError, valueAt, type Measure } from './profile.js';
import { Reservoir } from './fleet.js';

const m = (over: Partial<Measure>): Measure => ({
  pattern: 'noise',
  base: 0,
  noise: 0,
  decimals: 3,
  amplitude: 1,
  periodS: 60,
  perMinute: 1,
  burst: 10,
  everyS: 30,
  lengthS: 3,
  ...over,
});

describe('sim profile', () => {
  it('generates periodic, drift, bursts and noise values', () => {
    const periodic = m({ pattern: 'periodic', base: 20, amplitude: 5, periodS: 60 });
    expect(valueAt(periodic, 0, 0)).toBe(20);
    expect(valueAt(periodic, 15, 0)).toBe(25);
    expect(valueAt(periodic, 45, 0)).toBe(15);
    expect(valueAt(periodic, 0, 0.25)).toBe(25); // a thing's phase shifts its wave
    expect(valueAt(m({ pattern: 'drift', base: 1, perMinute: 6 }), 30, 0)).toBe(4);
    const bursts = m({ pattern: 'bursts', base: 1, burst: 9, everyS: 10, lengthS: 2 });
    expect([0, 1, 2, 5, 10, 11.5].map((t) => valueAt(bursts, t, 0))).toEqual([9, 9, 1, 1, 9, 9]);
    const noisy = Array.from({ length: 5000 }, () =>
      valueAt(m({ pattern: 'noise', base: 50, noise: 2 }), 0, 0),
    );
    const mean = noisy.reduce((a, b) => a + b, 0) / noisy.length;
    const sd = Math.sqrt(noisy.reduce((a, b) => a + (b - mean) ** 2, 0) / noisy.length);
    expect(Math.abs(mean - 50)).toBeLessThan(0.2);
    expect(Math.abs(sd - 2)).toBeLessThan(0.2);
  });

  it('refuses a bad profile naming every problem', () => {
    const bad = () =>
      parseProfile(
        JSON.stringify({
          telemetry: { topic: 'a/+/b', intervalMs: 1, measures: { t: { pattern: 'square' } } },
          jobs: { outcome: 'MAYBE' },
          extra: 1,
        }),
        'p.json',
      );
    expect(bad).toThrow(ProfileError);
    expect(bad).toThrow(
      /unknown key "extra"[\s\S]*telemetry\.topic: no wildcards[\s\S]*pattern: must be one of periodic, noise, drift, bursts[\s\S]*intervalMs: must be a number in 10\.\.Infinity[\s\S]*jobs\.outcome/,
    );
    expect(() => parseProfile('{', 'p.json')).toThrow(/p\.json: not valid JSON/);
  });

  it('keeps a bounded, uniform latency sample', () => {
    const r = new Reservoir(1000);
    for (let i = 1; i <= 100_000; i++) r.add(i);
    const p = r.percentiles();
    expect(p.count).toBe(100_000);
    expect(Math.abs(p.p50! - 50_000)).toBeLessThan(6000);
  });
});
