import { useEffect, useRef } from 'preact/hooks';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * A uPlot time chart. `data` is uPlot's columnar form: [x (epoch seconds), ...series]. Dragging selects a
 * range (`onZoom` gets it in epoch ms, so the page can ask the server for that range at this width);
 * `onWidth` tells the page how many pixels the plot has, for server-side downsampling.
 */
export function TimeChart(p: {
  data: uPlot.AlignedData;
  series: Array<{ label: string; stroke?: string; fill?: string; stepped?: boolean }>;
  height?: number;
  onZoom?: (from: number, to: number) => void;
  onWidth?: (width: number) => void;
  testid?: string;
  yLabel?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(p);
  latest.current = p;
  const shape = p.series.map((s) => s.label).join('\u0000');

  useEffect(() => {
    let disposed = false;
    let observer: ResizeObserver | null = null;
    void import('uplot').then(({ default: UPlot }) => {
      if (disposed || !box.current) return;
      const width = Math.max(200, box.current.clientWidth);
      const palette = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2'];
      const opts: uPlot.Options = {
        width,
        height: p.height ?? 240,
        legend: { live: true },
        cursor: { drag: { x: true, y: false, setScale: false } },
        scales: { x: { time: true } },
        axes: [{}, { label: p.yLabel, size: 60 }],
        series: [
          {},
          ...p.series.map((s, i) => ({
            label: s.label,
            stroke: s.stroke ?? palette[i % palette.length],
            fill: s.fill,
            width: 1.5,
            spanGaps: true,
            ...(s.stepped ? { paths: UPlot.paths.stepped!({ align: 1 }) } : {}),
          })),
        ],
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 4) return;
              const from = u.posToVal(u.select.left, 'x') * 1000;
              const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              latest.current.onZoom?.(Math.round(from), Math.round(to));
            },
          ],
        },
      };
      plot.current = new UPlot(opts, latest.current.data, box.current);
      markDrawn(box.current, latest.current.data);
      latest.current.onWidth?.(width);
      observer = new ResizeObserver(() => {
        if (!box.current || !plot.current) return;
        const w = Math.max(200, box.current.clientWidth);
        if (Math.abs(w - plot.current.width) < 2) return;
        plot.current.setSize({ width: w, height: latest.current.height ?? 240 });
        latest.current.onWidth?.(w);
      });
      observer.observe(box.current);
    });
    return () => {
      disposed = true;
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    if (!plot.current || !box.current) return;
    plot.current.setData(p.data);
    markDrawn(box.current, p.data);
  }, [p.data]);

  return <div class="chart" ref={box} data-testid={p.testid} />;
}

/**
 * Mark a drawn chart for tests and the bench: data-points (x values), data-last (the last x, epoch ms), and
 * a `console:chart` event with the draw time, so publish-to-chart latency can be measured in the page.
 */
function markDrawn(el: HTMLElement, data: uPlot.AlignedData) {
  const xs = data[0] ?? [];
  const last = xs.length ? Number(xs[xs.length - 1]) * 1000 : 0;
  el.dataset.points = String(xs.length);
  el.dataset.last = String(Math.round(last));
  el.dispatchEvent(
    new CustomEvent('console:chart', { bubbles: true, detail: { last, drawnAt: Date.now() } }),
  );
}
