import { useEffect, useRef, useState } from 'preact/hooks';
import { aws, consoleGet, live } from '../api';
import { TimeChart } from '../chart';
import { Card, Empty, ErrorBox, Page, useAsync } from '../ui';

const RANGES: Array<[string, number]> = [
  ['15 min', 900_000],
  ['1 h', 3_600_000],
  ['6 h', 21_600_000],
  ['24 h', 86_400_000],
  ['7 d', 604_800_000],
];

/**
 * One metric over time, downsampled on the server for this chart's width (at most about two points per
 * pixel), with zoom (drag), pan and a live tail: points of a thing's series arrive over the live feed and
 * are appended as they commit; a group's chart is re-read (debounced) when its members' points arrive.
 */
export function SeriesChart(p: {
  thing?: string;
  group?: string;
  metric: string;
  range: number;
  agg?: string;
  live?: boolean;
  height?: number;
  window?: { from: number; to: number } | null;
  onZoom?: (from: number, to: number) => void;
  testid?: string;
}) {
  const [width, setWidth] = useState(600);
  const [data, setData] = useState<[number[], Array<number | null>]>([[], []]);
  const [error, setError] = useState<unknown>(null);
  const [step, setStep] = useState(0);
  const reload = useRef<() => void>(() => undefined);
  const fixed = p.window ?? null;

  useEffect(() => {
    let cancelled = false;
    const fetchNow = () => {
      const to = fixed ? fixed.to : Date.now();
      const from = fixed ? fixed.from : to - p.range;
      consoleGet('telemetry', {
        metric: p.metric,
        thing: p.thing,
        group: p.group,
        from,
        to,
        width,
        agg: p.agg ?? 'avg',
      }).then(
        (r) => {
          if (cancelled) return;
          const points: Array<[number, number | string | null]> = r.series[0]?.points ?? [];
          setStep(r.step);
          setData([
            points.map((x) => x[0] / 1000),
            points.map((x) => (typeof x[1] === 'number' ? x[1] : null)),
          ]);
          setError(null);
        },
        (e: unknown) => !cancelled && setError(e),
      );
    };
    reload.current = fetchNow;
    fetchNow();
    return () => {
      cancelled = true;
    };
  }, [p.thing, p.group, p.metric, p.range, p.agg, width, fixed?.from, fixed?.to]);

  useEffect(() => {
    if (!p.live || fixed) return;
    if (p.group) {
      // A group's series is an aggregate over its members: re-read it every 5 s.
      const timer: ReturnType<typeof setTimeout> | null = null;
      const t = setInterval(() => reload.current(), 5000);
      return () => {
        clearInterval(t);
        if (timer) clearTimeout(timer);
      };
    }
    if (!p.thing) return;
    return live(
      { series: [[p.thing, p.metric]] },
      {
        points: (m) => {
          setData(([xs, ys]) => {
            const nx = [...xs];
            const ny = [...ys];
            for (const [ts, v] of m.points) {
              if (typeof v !== 'number') continue;
              nx.push(ts / 1000);
              ny.push(v);
            }
            // Keep the window: drop what slid out on the left.
            const from = (Date.now() - p.range) / 1000;
            let cut = 0;
            while (cut < nx.length && nx[cut]! < from) cut++;
            return [nx.slice(cut), ny.slice(cut)];
          });
        },
      },
    );
  }, [p.thing, p.group, p.metric, p.live, fixed]);

  return (
    <div>
      <ErrorBox error={error} />
      <TimeChart
        data={data}
        series={[{ label: p.metric }]}
        height={p.height ?? 280}
        onWidth={(w) => setWidth(Math.round(w))}
        onZoom={p.onZoom}
        testid={p.testid ?? `chart-${p.metric}`}
      />
      <p class="muted small">
        {data[0].length} points · bucket{' '}
        {step >= 1000 ? `${(step / 1000).toFixed(step % 1000 ? 1 : 0)} s` : `${step} ms`} for {width} px
      </p>
    </div>
  );
}

export function Telemetry() {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const [mode, setMode] = useState<'thing' | 'group'>(params.get('group') ? 'group' : 'thing');
  const [target, setTarget] = useState(params.get('group') ?? params.get('thing') ?? '');
  const [metric, setMetric] = useState(params.get('metric') ?? '');
  const [range, setRange] = useState(3_600_000);
  const [agg, setAgg] = useState('avg');
  const [tail, setTail] = useState(true);
  const [window, setWindow] = useState<{ from: number; to: number } | null>(null);
  const series = useAsync(
    () =>
      aws('iot', 'GET', '/timeseries/series', {
        query: { thing: mode === 'thing' ? target || undefined : undefined },
      }),
    [mode, target],
  );
  const all: any[] = (series.data?.series ?? []).filter((s: any) => !String(s.metric).startsWith('$'));
  const metrics = [...new Set(all.map((s) => s.metric as string))];
  const things = [...new Set(all.map((s) => s.thing as string))];
  const ready = target && metric;
  const pan = (dir: number) => {
    const now = Date.now();
    const w = window ?? { from: now - range, to: now };
    const shift = ((w.to - w.from) / 2) * dir;
    setWindow({ from: w.from + shift, to: Math.min(now, w.to + shift) });
  };
  return (
    <Page
      title="Telemetry"
      subtitle="A metric over time for a thing or a thing group. Drag across the chart to zoom."
    >
      <Card>
        <div class="toolbar">
          <select value={mode} onChange={(e) => setMode(e.currentTarget.value as 'thing' | 'group')}>
            <option value="thing">thing</option>
            <option value="group">thing group</option>
          </select>
          <input
            list="ts-things"
            value={target}
            placeholder={mode === 'thing' ? 'thing name' : 'group name'}
            onChange={(e) => setTarget(e.currentTarget.value)}
            data-testid="ts-target"
          />
          <datalist id="ts-things">
            {things.map((t) => (
              <option value={t} />
            ))}
          </datalist>
          <input
            list="ts-metrics"
            value={metric}
            placeholder="metric"
            onChange={(e) => setMetric(e.currentTarget.value)}
            data-testid="ts-metric"
          />
          <datalist id="ts-metrics">
            {metrics.map((m) => (
              <option value={m} />
            ))}
          </datalist>
          <select value={agg} onChange={(e) => setAgg(e.currentTarget.value)}>
            {['avg', 'min', 'max', 'sum', 'count', 'last', 'p50', 'p95', 'p99'].map((a) => (
              <option value={a}>{a}</option>
            ))}
          </select>
          {RANGES.map(([label, ms]) => (
            <button
              class={range === ms && !window ? 'active' : ''}
              onClick={() => {
                setRange(ms);
                setWindow(null);
              }}
            >
              {label}
            </button>
          ))}
          <button onClick={() => pan(-1)} title="pan left">
            ←
          </button>
          <button onClick={() => pan(1)} title="pan right">
            →
          </button>
          {window && <button onClick={() => setWindow(null)}>reset zoom</button>}
          <label class="check">
            <input type="checkbox" checked={tail} onChange={(e) => setTail(e.currentTarget.checked)} /> live
            tail
          </label>
        </div>
      </Card>
      {!ready ? (
        <Empty title="Pick a thing (or group) and a metric">
          {all.length === 0
            ? "Nothing is stored yet: a topic rule with a timeseries action writes metrics, e.g. SELECT temperature FROM 'things/+/telemetry'."
            : `Stored metrics: ${metrics.slice(0, 12).join(', ')}.`}
        </Empty>
      ) : (
        <Card title={`${metric} · ${mode} ${target}`}>
          <SeriesChart
            thing={mode === 'thing' ? target : undefined}
            group={mode === 'group' ? target : undefined}
            metric={metric}
            range={range}
            agg={agg}
            live={tail}
            window={window}
            onZoom={(from, to) => setWindow({ from, to })}
            testid="explorer-chart"
          />
        </Card>
      )}
    </Page>
  );
}
