/**
 * Joda-Time patterns for `parse_time(pattern, epochMs[, timezone])` and `time_to_epoch(str, pattern)`.
 * Supported letters: y M d H h k m s S a E Z z X, 'quoted literals' and `''` for a quote.
 */
interface Fields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
  weekday: number;
  offsetMinutes: number;
  tzName: string;
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

type Part = { letter: string; count: number } | { literal: string };

function splitPattern(pattern: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "'") {
      if (pattern[i + 1] === "'") {
        parts.push({ literal: "'" });
        i += 2;
        continue;
      }
      const end = pattern.indexOf("'", i + 1);
      const stop = end < 0 ? pattern.length : end;
      parts.push({ literal: pattern.slice(i + 1, stop) });
      i = stop + 1;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (pattern[j] === c) j++;
      parts.push({ letter: c, count: j - i });
      i = j;
      continue;
    }
    parts.push({ literal: c });
    i++;
  }
  return parts;
}

const pad = (n: number, w: number) => String(Math.abs(n)).padStart(w, '0');

/** Wall-clock fields of `ms` in `timeZone` (IANA name or UTC offset such as "+05:30"), or null if unknown. */
function fieldsAt(ms: number, timeZone: string): Fields | null {
  const fixed = /^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$/.exec(timeZone);
  let offsetMinutes = 0;
  let tzName = timeZone;
  if (timeZone === 'UTC' || timeZone === 'Z' || timeZone === 'GMT') {
    tzName = 'UTC';
  } else if (fixed) {
    offsetMinutes = (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3] ?? 0));
  } else {
    try {
      const parts = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }).formatToParts(new Date(ms));
      const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
      const wall = Date.UTC(
        get('year'),
        get('month') - 1,
        get('day'),
        get('hour'),
        get('minute'),
        get('second'),
      );
      offsetMinutes = Math.round((wall - (ms - (((ms % 1000) + 1000) % 1000))) / 60000);
    } catch {
      return null;
    }
  }
  const d = new Date(ms + offsetMinutes * 60000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    ms: d.getUTCMilliseconds(),
    weekday: d.getUTCDay(),
    offsetMinutes,
    tzName,
  };
}

function offsetText(min: number, colon: boolean): string {
  if (min === 0 && colon) return 'Z';
  const sign = min < 0 ? '-' : '+';
  const h = pad(Math.floor(Math.abs(min) / 60), 2);
  const m = pad(Math.abs(min) % 60, 2);
  return colon ? `${sign}${h}:${m}` : `${sign}${h}${m}`;
}

/** Format epoch milliseconds with a Joda pattern; undefined for an unknown time zone. */
export function formatJoda(pattern: string, ms: number, timeZone = 'UTC'): string | undefined {
  const f = fieldsAt(ms, timeZone);
  if (!f) return undefined;
  let out = '';
  for (const part of splitPattern(pattern)) {
    if ('literal' in part) {
      out += part.literal;
      continue;
    }
    const { letter, count } = part;
    switch (letter) {
      case 'y':
      case 'Y':
      case 'u':
        out += count === 2 ? pad(f.year % 100, 2) : pad(f.year, count);
        break;
      case 'M':
        out +=
          count >= 4
            ? MONTHS[f.month - 1]
            : count === 3
              ? MONTHS[f.month - 1]!.slice(0, 3)
              : pad(f.month, count);
        break;
      case 'd':
        out += pad(f.day, count);
        break;
      case 'H':
        out += pad(f.hour, count);
        break;
      case 'k':
        out += pad(f.hour === 0 ? 24 : f.hour, count);
        break;
      case 'h':
        out += pad(f.hour % 12 === 0 ? 12 : f.hour % 12, count);
        break;
      case 'm':
        out += pad(f.minute, count);
        break;
      case 's':
        out += pad(f.second, count);
        break;
      case 'S':
        out += pad(f.ms, 3).slice(0, count).padEnd(count, '0');
        break;
      case 'a':
        out += f.hour < 12 ? 'AM' : 'PM';
        break;
      case 'E':
        out += count >= 4 ? DAYS[f.weekday] : DAYS[f.weekday]!.slice(0, 3);
        break;
      case 'Z':
      case 'X':
        out +=
          count >= 2 || letter === 'X'
            ? offsetText(f.offsetMinutes, true)
            : offsetText(f.offsetMinutes, false);
        break;
      case 'z':
        out += f.tzName;
        break;
      default:
        out += letter.repeat(count);
    }
  }
  return out;
}

/** Parse a date string with a Joda pattern into epoch ms (UTC unless the pattern has an offset); undefined on mismatch. */
export function parseJoda(text: string, pattern: string): number | undefined {
  let i = 0;
  let year = 1970;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let ms = 0;
  let pm: boolean | null = null;
  let offset = 0;
  const parts = splitPattern(pattern);
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!;
    if ('literal' in part) {
      if (!text.startsWith(part.literal, i)) return undefined;
      i += part.literal.length;
      continue;
    }
    const { letter, count } = part;
    // A numeric field followed directly by another field takes exactly `count` digits.
    const nextIsField = p + 1 < parts.length && !('literal' in parts[p + 1]!);
    const digits = (max: number): number | undefined => {
      const m = new RegExp(`^\\d{1,${nextIsField ? count : max}}`).exec(text.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    let v: number | undefined;
    switch (letter) {
      case 'y':
      case 'Y':
      case 'u':
        v = digits(count === 2 ? 2 : 9);
        if (v !== undefined) year = count === 2 ? 2000 + v : v;
        break;
      case 'M':
        if (count >= 3) {
          const idx = MONTHS.findIndex((mn) =>
            text
              .slice(i)
              .toLowerCase()
              .startsWith((count === 3 ? mn.slice(0, 3) : mn).toLowerCase()),
          );
          if (idx < 0) return undefined;
          i += count === 3 ? 3 : MONTHS[idx]!.length;
          v = month = idx + 1;
        } else if ((v = digits(2)) !== undefined) month = v;
        break;
      case 'd':
        if ((v = digits(2)) !== undefined) day = v;
        break;
      case 'H':
      case 'k':
      case 'h':
        if ((v = digits(2)) !== undefined) hour = letter === 'k' && v === 24 ? 0 : v;
        break;
      case 'm':
        if ((v = digits(2)) !== undefined) minute = v;
        break;
      case 's':
        if ((v = digits(2)) !== undefined) second = v;
        break;
      case 'S': {
        const m = /^\d+/.exec(text.slice(i));
        if (!m) return undefined;
        i += m[0].length;
        v = ms = Math.round(Number(`0.${m[0]}`) * 1000);
        break;
      }
      case 'a': {
        const s = text.slice(i, i + 2).toUpperCase();
        if (s !== 'AM' && s !== 'PM') return undefined;
        pm = s === 'PM';
        i += 2;
        v = 0;
        break;
      }
      case 'E': {
        const idx = DAYS.findIndex((dn) =>
          text.slice(i).toLowerCase().startsWith(dn.slice(0, 3).toLowerCase()),
        );
        if (idx < 0) return undefined;
        i += count >= 4 ? DAYS[idx]!.length : 3;
        v = 0;
        break;
      }
      case 'Z':
      case 'X': {
        const m = /^(Z|([+-])(\d{2}):?(\d{2}))/.exec(text.slice(i));
        if (!m) return undefined;
        i += m[0].length;
        offset = m[1] === 'Z' ? 0 : (m[2] === '-' ? -1 : 1) * (Number(m[3]) * 60 + Number(m[4]));
        v = 0;
        break;
      }
      default:
        return undefined;
    }
    if (v === undefined) return undefined;
  }
  if (i !== text.length) return undefined;
  if (pm !== null) hour = (hour % 12) + (pm ? 12 : 0);
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset * 60000;
}
