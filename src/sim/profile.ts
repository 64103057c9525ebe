/**
 * The simulation profile: what each simulated thing publishes and how it behaves. JSON:
 *
 *   { "telemetry": { "topic": "things/{thing}/telemetry", "intervalMs": 1000, "qos": 1,
 *       "measures": {
 *         "temperature": { "pattern": "periodic", "base": 20, "amplitude": 5, "periodS": 60, "noise": 0.2 },
 *         "humidity":    { "pattern": "noise", "base": 50, "noise": 2 },
 *         "wear":        { "pattern": "drift", "base": 0, "perMinute": 0.5 },
 *         "vibration":   { "pattern": "bursts", "base": 1, "burst": 10, "everyS": 30, "lengthS": 3 } } },
 *     "shadow": { "reportEveryS": 60, "followDesired": true },
 *     "jobs": { "run": true, "workMs": 500, "outcome": "SUCCEEDED" } }
 *
 * Every pattern takes `noise` (standard deviation of Gaussian noise added) and `decimals` (rounding).
 * Things get a phase offset each, so a fleet is not in lockstep.
 */
export const PATTERNS = ['periodic', 'noise', 'drift', 'bursts'] as const;
export type Pattern = (typeof PATTERNS)[number];

export interface Measure {
  readonly pattern: Pattern;
  readonly base: number;
  readonly noise: number;
  readonly decimals: number;
  readonly amplitude: number;
  readonly periodS: number;
  readonly perMinute: number;
  readonly burst: number;
  readonly everyS: number;
  readonly lengthS: number;
}

export interface Profile {
  readonly telemetry: {
    readonly topic: string;
    readonly intervalMs: number;
    readonly qos: 0 | 1;
    readonly measures: Readonly<Record<string, Measure>>;
  };
  readonly shadow: { readonly reportEveryS: number; readonly followDesired: boolean } | null;
  readonly jobs: {
    readonly run: boolean;
    readonly workMs: number;
    readonly outcome: 'SUCCEEDED' | 'FAILED';
  } | null;
}

export class ProfileError extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse and check a profile; every problem is named by its path. */
export function parseProfile(text: string, file = 'profile'): Profile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  const num = (
    o: Record<string, unknown>,
    k: string,
    path: string,
    def: number,
    min = -Infinity,
    max = Infinity,
  ) => {
    const v = o[k];
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      problems.push(`${path}.${k}: must be a number in ${min}..${max}`);
      return def;
    }
    return v;
  };
  const known = (o: Record<string, unknown>, path: string, keys: string[]) => {
    for (const k of Object.keys(o))
      if (!keys.includes(k)) problems.push(`${path}: unknown key "${k}" (known: ${keys.join(', ')})`);
  };
  if (!isObj(raw)) throw new ProfileError(`${file}: must be a JSON object`);
  known(raw, '(top level)', ['telemetry', 'shadow', 'jobs']);
  const t = isObj(raw.telemetry) ? raw.telemetry : {};
  if (raw.telemetry !== undefined && !isObj(raw.telemetry)) problems.push('telemetry: must be an object');
  known(t, 'telemetry', ['topic', 'intervalMs', 'qos', 'measures']);
  const topic = typeof t.topic === 'string' ? t.topic : 'things/{thing}/telemetry';
  if (/[#+]/.test(topic) || topic.startsWith('$'))
    problems.push('telemetry.topic: no wildcards, no $ topics');
  const measures: Record<string, Measure> = {};
  const m = isObj(t.measures) ? t.measures : { value: { pattern: 'noise', base: 0, noise: 1 } };
  for (const [name, spec] of Object.entries(m)) {
    const p = `telemetry.measures.${name}`;
    if (!isObj(spec)) {
      problems.push(`${p}: must be an object`);
      continue;
    }
    known(spec, p, [
      'pattern',
      'base',
      'noise',
      'decimals',
      'amplitude',
      'periodS',
      'perMinute',
      'burst',
      'everyS',
      'lengthS',
    ]);
    const pattern = spec.pattern as Pattern;
    if (!PATTERNS.includes(pattern)) problems.push(`${p}.pattern: must be one of ${PATTERNS.join(', ')}`);
    measures[name] = {
      pattern,
      base: num(spec, 'base', p, 0),
      noise: num(spec, 'noise', p, pattern === 'noise' ? 1 : 0, 0),
      decimals: num(spec, 'decimals', p, 2, 0, 10),
      amplitude: num(spec, 'amplitude', p, 1),
      periodS: num(spec, 'periodS', p, 60, 0.001),
      perMinute: num(spec, 'perMinute', p, 1),
      burst: num(spec, 'burst', p, 10),
      everyS: num(spec, 'everyS', p, 30, 0.001),
      lengthS: num(spec, 'lengthS', p, 3, 0),
    };
  }
  const qos = num(t, 'qos', 'telemetry', 1, 0, 1);
  const intervalMs = num(t, 'intervalMs', 'telemetry', 1000, 10);
  const shadowRaw = raw.shadow;
  const jobsRaw = raw.jobs;
  if (shadowRaw !== undefined && !isObj(shadowRaw)) problems.push('shadow: must be an object');
  if (jobsRaw !== undefined && !isObj(jobsRaw)) problems.push('jobs: must be an object');
  const shadow = isObj(shadowRaw)
    ? (known(shadowRaw, 'shadow', ['reportEveryS', 'followDesired']),
      {
        reportEveryS: num(shadowRaw, 'reportEveryS', 'shadow', 60, 1),
        followDesired: shadowRaw.followDesired !== false,
      })
    : null;
  const jobs = isObj(jobsRaw)
    ? (known(jobsRaw, 'jobs', ['run', 'workMs', 'outcome']),
      {
        run: jobsRaw.run !== false,
        workMs: num(jobsRaw, 'workMs', 'jobs', 500, 0),
        outcome: jobsRaw.outcome === 'FAILED' ? ('FAILED' as const) : ('SUCCEEDED' as const),
      })
    : null;
  if (
    isObj(jobsRaw) &&
    jobsRaw.outcome !== undefined &&
    !['SUCCEEDED', 'FAILED'].includes(jobsRaw.outcome as string)
  )
    problems.push('jobs.outcome: must be SUCCEEDED or FAILED');
  if (problems.length) throw new ProfileError(`${file} refused:\n  ${problems.join('\n  ')}`);
  return {
    telemetry: {
      topic,
      intervalMs,
      qos: qos === 0 ? 0 : 1,
      measures,
    },
    shadow,
    jobs,
  };
}

/** A standard normal sample (Box-Muller). */
function gaussian(): number {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

/**
 * The value of a measure at `elapsedS` seconds into the run for a thing with phase `phase` (0..1).
 * @example valueAt({ pattern: 'periodic', base: 20, amplitude: 5, periodS: 60, ... }, 15, 0) === 25
 */
export function valueAt(m: Measure, elapsedS: number, phase: number): number {
  let v: number;
  switch (m.pattern) {
    case 'periodic':
      v = m.base + m.amplitude * Math.sin(2 * Math.PI * (elapsedS / m.periodS + phase));
      break;
    case 'drift':
      v = m.base + (m.perMinute * elapsedS) / 60;
      break;
    case 'bursts': {
      const at = (elapsedS + phase * m.everyS) % m.everyS;
      v = at < m.lengthS ? m.burst : m.base;
      break;
    }
    default:
      v = m.base;
  }
  if (m.noise > 0) v += gaussian() * m.noise;
  const f = 10 ** m.decimals;
  return Math.round(v * f) / f;
}
