import { describe, expect, it } from 'vitest';
import { isThingsteadError } from '../errors/index.js';
import { awsScheduleTime, compileWindows } from './windows.js';

/** Maintenance windows: AWS cron (UTC) occurrences, each open for durationInMinutes (reference §3.8). */
const at = (iso: string) => Date.parse(`${iso}Z`);
const win = (startTime: string, durationInMinutes: number) =>
  compileWindows([{ startTime, durationInMinutes }]);
/** The days (yyyy-MM-dd) of the next n occurrences from `from`. */
const days = (w: ReturnType<typeof compileWindows>, from: string, n: number) =>
  w.next(at(from), n).map((t) => awsScheduleTime(t));

describe('maintenance windows', () => {
  it('cron(0 2 ? * SUN *) for 120 minutes: open Sundays 02:00 to 03:59 UTC, closed otherwise', () => {
    const w = win('cron(0 2 ? * SUN *)', 120);
    expect(w.isOpen(at('2026-11-29T01:59:59'))).toBe(false);
    expect(w.isOpen(at('2026-11-29T02:00'))).toBe(true);
    expect(w.isOpen(at('2026-11-29T03:59:59'))).toBe(true);
    expect(w.isOpen(at('2026-11-29T04:00'))).toBe(false);
    expect(w.isOpen(at('2026-11-30T02:30'))).toBe(false); // Monday
    expect(days(w, '2026-11-29T02:01', 3)).toEqual([
      '2026-12-06T02:00',
      '2026-12-13T02:00',
      '2026-12-20T02:00',
    ]);
    expect(days(w, '2026-11-29T02:00', 1)).toEqual(['2026-11-29T02:00']);
  });

  it('a window that crosses midnight stays open into the next day; several windows combine', () => {
    const w = compileWindows([
      { startTime: 'cron(30 23 * * ? *)', durationInMinutes: 60 },
      { startTime: 'cron(0 12 ? * MON-FRI *)', durationInMinutes: 1 },
    ]);
    expect(w.isOpen(at('2027-03-02T00:29'))).toBe(true);
    expect(w.isOpen(at('2027-03-02T00:30'))).toBe(false);
    expect(w.isOpen(at('2027-03-02T12:00:30'))).toBe(true); // Tuesday
    expect(w.isOpen(at('2027-03-06T12:00:30'))).toBe(false); // Saturday
    expect(days(w, '2027-03-05T13:00', 3)).toEqual([
      '2027-03-05T23:30',
      '2027-03-06T23:30',
      '2027-03-07T23:30',
    ]);
  });

  it('lists, ranges, increments, names and years', () => {
    const w = win('cron(0/15 8-9 1,15 JAN,MAR ? 2027)', 5);
    expect(days(w, '2027-01-01T00:00', 9)).toEqual([
      '2027-01-01T08:00',
      '2027-01-01T08:15',
      '2027-01-01T08:30',
      '2027-01-01T08:45',
      '2027-01-01T09:00',
      '2027-01-01T09:15',
      '2027-01-01T09:30',
      '2027-01-01T09:45',
      '2027-01-15T08:00',
    ]);
    expect(w.isOpen(at('2027-03-15T09:49'))).toBe(true);
    expect(w.isOpen(at('2027-03-15T09:50'))).toBe(false);
    expect(w.isOpen(at('2028-01-01T08:01'))).toBe(false); // year 2027 only
    expect(w.next(at('2027-12-31T00:00'), 1)).toEqual([]);
  });

  it('L, W, LW, nL and n#k', () => {
    expect(days(win('cron(0 0 L * ? *)', 1), '2027-02-01T00:00', 2)).toEqual([
      '2027-02-28T00:00',
      '2027-03-31T00:00',
    ]);
    expect(days(win('cron(0 0 LW * ? *)', 1), '2027-02-01T00:00', 1)).toEqual(['2027-02-26T00:00']);
    // 2027-05-15 is a Saturday: the nearest weekday is Friday the 14th.
    expect(days(win('cron(0 0 15W * ? *)', 1), '2027-05-01T00:00', 1)).toEqual(['2027-05-14T00:00']);
    expect(days(win('cron(0 0 ? * 6#3 *)', 1), '2027-03-01T00:00', 1)).toEqual(['2027-03-19T00:00']);
    expect(days(win('cron(0 0 ? * MONL *)', 1), '2027-03-01T00:00', 1)).toEqual(['2027-03-29T00:00']);
    expect(days(win('cron(0 0 ? * L *)', 1), '2027-03-01T00:00', 1)).toEqual(['2027-03-06T00:00']);
  });

  it('no windows: always open; a bad expression is InvalidRequest naming the window and the problem', () => {
    expect(compileWindows(undefined).isOpen(0)).toBe(true);
    const bad = [
      ['0 2 ? * SUN *', /must be cron\(minutes hours/],
      ['cron(0 2 ? * SUN)', /has 5 fields, not 6/],
      ['cron(0 2 1 * SUN *)', /exactly one of day-of-month and day-of-week must be \?/],
      ['cron(60 2 ? * SUN *)', /minutes '60' is not 0-59/],
      ['cron(0 2 ? * FUN *)', /day-of-week 'FUN' is not 1-7 or SUN-SAT/],
      ['cron(0 5-2 ? * SUN *)', /hours range '5-2' runs backwards/],
    ] as const;
    for (const [text, problem] of bad) {
      let caught: unknown;
      try {
        compileWindows([
          { startTime: 'cron(0 0 ? * * *)', durationInMinutes: 1 },
          { startTime: text, durationInMinutes: 1 },
        ]);
      } catch (err) {
        caught = err;
      }
      expect(isThingsteadError(caught) && caught.code, text).toBe('InvalidRequest');
      expect((caught as Error).message).toMatch(/^schedulingConfig\.maintenanceWindows\[1\]\.startTime '/);
      expect((caught as Error).message, text).toMatch(problem);
    }
  });
});
