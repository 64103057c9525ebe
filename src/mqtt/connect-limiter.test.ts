/** Per-client-id CONNECT rate limit: token bucket semantics and the memory bound. */
import { describe, expect, it } from 'vitest';
import { ConnectLimiter } from './connect-limiter.js';

describe('ConnectLimiter', () => {
  it('admits `burst` CONNECTs at once, then `rate` per second, per client id', () => {
    const l = new ConnectLimiter(1, 3);
    const t = 1_000_000;
    expect([1, 2, 3, 4].map(() => l.admit('a', t))).toEqual([true, true, true, false]);
    expect(l.admit('b', t)).toBe(true);
    expect(l.admit('a', t + 500)).toBe(false);
    expect(l.admit('a', t + 1100)).toBe(true);
    expect(l.admit('a', t + 1200)).toBe(false);
  });

  it('forgets a client id once its bucket is full again (sweep), so memory follows the recent connect rate', () => {
    const l = new ConnectLimiter(1, 2);
    const t = 1_000_000;
    for (let i = 0; i < 10_000; i++) l.admit(`storm-${i}`, t + i / 10);
    expect(l.tracked).toBe(10_000);
    l.sweep(t + 1500); // full again after burst / rate = 2 s: nothing yet
    expect(l.tracked).toBe(10_000);
    l.sweep(t + 2000 + 500); // the 5,001 admitted at or before t + 500 ms are full again
    expect(l.tracked).toBe(4_999);
    l.sweep(t + 4000);
    expect(l.tracked).toBe(0);
  });

  it('holds at most 200,000 client ids between sweeps, and 0 disables the limit', () => {
    const l = new ConnectLimiter(1, 1);
    for (let i = 0; i < 200_100; i++) l.admit(`id-${i}`, 5);
    expect(l.tracked).toBe(200_000);
    const off = new ConnectLimiter(0, 1);
    expect([1, 2, 3].map(() => off.admit('x'))).toEqual([true, true, true]);
    expect(off.tracked).toBe(0);
  });
});
