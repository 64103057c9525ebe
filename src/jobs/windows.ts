/**
 * Maintenance windows (schedulingConfig.maintenanceWindows, reference §3.8): `startTime` is an AWS cron
 * expression, `cron(minutes hours day-of-month month day-of-week year)`, in UTC, and each occurrence opens a
 * window of `durationInMinutes` (1..1430) during which the rollout may launch executions. Pure functions:
 * parse once (`compileWindows`, InvalidRequest naming what is wrong), then ask `isOpen(at)` and `next(from, n)`.
 *
 * The cron dialect is AWS's (the one EventBridge schedules use): six fields; `,` lists, `-` ranges, `*` all,
 * `/` increments (`0/15`, `10-50/20`, and after `*`); month names JAN-DEC, day names SUN-SAT (1 = SUN ... 7 = SAT);
 * exactly one of day-of-month and day-of-week is `?`; day-of-month also takes `L` (last day), `nW` (the
 * weekday nearest day n, within the month) and `LW`; day-of-week also takes `L` (Saturday), `nL` (the last
 * day n of the month) and `n#k` (the k-th day n of the month). Windows are wall-clock minutes: they are not
 * scaled by jobs.minuteMs (a calendar is not a rollout rate).
 * @example compileWindows([{ startTime: 'cron(0 2 ? * SUN *)', durationInMinutes: 120 }]).isOpen(Date.now())
 */
import { E } from '../errors/index.js';

const MINUTE = 60_000;
const DAY = 86_400_000;
/** How far next() looks ahead for occurrences (a cron may name a year far away, or never match). */
const HORIZON_DAYS = 5 * 366;

type Values = ReadonlySet<number>;
type DayRule = (year: number, month: number, day: number, weekday: number, daysInMonth: number) => boolean;

interface Cron {
  readonly minutes: Values;
  readonly hours: Values;
  readonly months: Values;
  readonly years: Values;
  /** Day-of-month and day-of-week together (one of them is `?`, so always true). */
  readonly day: DayRule;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

class CronProblem extends Error {}

/** `,`-separated items of numbers, ranges and increments within [min, max] (names allowed when given). */
function values(field: string, what: string, min: number, max: number, names?: readonly string[]): Values {
  const num = (t: string): number => {
    const named = names?.indexOf(t.toUpperCase()) ?? -1;
    const n = named >= 0 ? named + min : /^\d+$/.test(t) ? Number(t) : NaN;
    if (!Number.isInteger(n) || n < min || n > max)
      throw new CronProblem(
        `${what} '${t}' is not ${min}-${max}${names ? ` or ${names[0]}-${names.at(-1)}` : ''}`,
      );
    return n;
  };
  const out = new Set<number>();
  for (const item of field.split(',')) {
    const [range, stepText, extra] = item.split('/');
    if (range === undefined || range === '' || extra !== undefined)
      throw new CronProblem(`${what} item '${item}' is malformed`);
    const step = stepText === undefined ? 1 : num(stepText);
    if (stepText !== undefined && step < 1)
      throw new CronProblem(`${what} increment '${stepText}' must be >= 1`);
    let from: number;
    let to: number;
    if (range === '*') [from, to] = [min, max];
    else if (range.includes('-')) {
      const [a, b] = range.split('-');
      [from, to] = [num(a ?? ''), num(b ?? '')];
      if (from > to) throw new CronProblem(`${what} range '${range}' runs backwards`);
    } else [from, to] = [num(range), stepText === undefined ? num(range) : max];
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

function dayOfMonthRule(field: string): DayRule {
  if (field === '?') return () => true;
  if (field === 'L') return (_y, _m, d, _w, last) => d === last;
  if (field === 'LW')
    return (y, m, d, _w, last) => {
      const wd = weekdayOf(y, m, last);
      return d === last - (wd === 6 ? 1 : wd === 0 ? 2 : 0);
    };
  const w = /^(\d+)W$/.exec(field);
  if (w) {
    const target = Number(w[1]);
    if (target < 1 || target > 31) throw new CronProblem(`day-of-month '${field}' is not 1W-31W`);
    return (y, m, d, _wd, last) => d === nearestWeekday(y, m, Math.min(target, last), last);
  }
  const days = values(field, 'day-of-month', 1, 31);
  return (_y, _m, d) => days.has(d);
}

function dayOfWeekRule(field: string): DayRule {
  if (field === '?') return () => true;
  if (field === 'L') return (_y, _m, _d, w) => w === 6;
  const last = /^([1-7]|[A-Za-z]{3})L$/.exec(field);
  if (last) {
    const want = values(last[1]!, 'day-of-week', 1, 7, DAYS);
    return (_y, _m, d, w, n) => want.has(w + 1) && d + 7 > n;
  }
  const nth = /^([1-7]|[A-Za-z]{3})#([1-5])$/.exec(field);
  if (nth) {
    const want = values(nth[1]!, 'day-of-week', 1, 7, DAYS);
    const k = Number(nth[2]);
    return (_y, _m, d, w) => want.has(w + 1) && Math.ceil(d / 7) === k;
  }
  const days = values(field, 'day-of-week', 1, 7, DAYS);
  return (_y, _m, _d, w) => days.has(w + 1);
}

const weekdayOf = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).getUTCDay();

/** The weekday nearest to day `d` without leaving the month (Quartz's `W`). */
function nearestWeekday(y: number, m: number, d: number, last: number): number {
  const w = weekdayOf(y, m, d);
  if (w === 6) return d === 1 ? 3 : d - 1;
  if (w === 0) return d === last ? d - 2 : d + 1;
  return d;
}

/** Parse `cron(...)`; throws CronProblem. */
export function parseCron(text: string): Cron {
  const m = /^cron\((.*)\)$/.exec(text.trim());
  if (!m) throw new CronProblem('it must be cron(minutes hours day-of-month month day-of-week year)');
  const fields = m[1]!.trim().split(/\s+/);
  if (fields.length !== 6) throw new CronProblem(`it has ${fields.length} fields, not 6`);
  const [min, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?'))
    throw new CronProblem('exactly one of day-of-month and day-of-week must be ?');
  const byMonth = dayOfMonthRule(dom);
  const byWeek = dayOfWeekRule(dow);
  return {
    minutes: values(min, 'minutes', 0, 59),
    hours: values(hour, 'hours', 0, 23),
    months: values(month, 'month', 1, 12, MONTHS),
    years: values(year, 'year', 1970, 2199),
    day: (y, mo, d, w, n) => byMonth(y, mo, d, w, n) && byWeek(y, mo, d, w, n),
  };
}

/** The start times (epoch ms) of a cron's occurrences on the UTC day starting at `dayStart`, ascending. */
function startsOn(cron: Cron, dayStart: number): number[] {
  const date = new Date(dayStart);
  const [y, mo, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
  const last = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (!cron.years.has(y) || !cron.months.has(mo) || !cron.day(y, mo, d, date.getUTCDay(), last)) return [];
  const out: number[] = [];
  for (const h of [...cron.hours].sort((a, b) => a - b))
    for (const mi of [...cron.minutes].sort((a, b) => a - b)) out.push(dayStart + (h * 60 + mi) * MINUTE);
  return out;
}

export interface MaintenanceWindows {
  /** True when `at` (epoch ms) lies inside an occurrence of any window: [start, start + duration). */
  isOpen(at: number): boolean;
  /** The next `count` window starts at or after `from` (epoch ms), ascending, within five years. */
  next(from: number, count: number): number[];
}

/**
 * Compile schedulingConfig.maintenanceWindows; throws InvalidRequest (JobMaintenanceWindow) naming the first
 * window whose startTime is not an AWS cron expression. No windows: always open.
 */
export function compileWindows(
  windows: readonly { readonly startTime: string; readonly durationInMinutes: number }[] | undefined,
): MaintenanceWindows {
  const compiled = (windows ?? []).map((w, index) => {
    try {
      return { cron: parseCron(w.startTime), durationMs: w.durationInMinutes * MINUTE };
    } catch (err) {
      if (!(err instanceof CronProblem)) throw err;
      throw E.JobMaintenanceWindow({ index, value: w.startTime.slice(0, 256), problem: err.message });
    }
  });
  return {
    isOpen(at) {
      if (compiled.length === 0) return true;
      const today = Math.floor(at / DAY) * DAY;
      // Durations are at most 1430 minutes, so an open window started today or yesterday.
      return compiled.some(({ cron, durationMs }) =>
        [today - DAY, today].some((day) => startsOn(cron, day).some((s) => s <= at && at < s + durationMs)),
      );
    },
    next(from, count) {
      const out: number[] = [];
      const first = Math.floor(from / DAY) * DAY;
      for (let day = first; day < first + HORIZON_DAYS * DAY && out.length < count; day += DAY) {
        const starts = compiled.flatMap(({ cron }) => startsOn(cron, day)).filter((s) => s >= from);
        out.push(...[...new Set(starts)].sort((a, b) => a - b));
      }
      return out.slice(0, count);
    },
  };
}

/** AWS's schedulingConfig time format, `yyyy-MM-ddTHH:mm` (UTC). */
export const awsScheduleTime = (ms: number) => new Date(ms).toISOString().slice(0, 16);
