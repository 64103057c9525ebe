/** The bench's outputs: a markdown table for the terminal and README, and a small SVG bar chart. */
import type { BrokerName } from './brokers.js';

export interface MetricResult {
  readonly key: string;
  readonly label: string;
  readonly unit: 'msg/s' | 'deliveries/s' | 'clients/s' | 'ms' | 'KB';
  readonly better: 'higher' | 'lower';
  /** The issue's target for Thingstead, if any, e.g. ">= 250k". */
  readonly target?: string;
  readonly values: Partial<
    Record<BrokerName, { runs: number[]; median: number | null; note?: string; details?: unknown[] }>
  >;
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmt(v: number | null | undefined, unit: MetricResult['unit']): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  if (unit === 'ms') return v < 10 ? v.toFixed(2) : v.toFixed(1);
  if (unit === 'KB') return v.toFixed(1);
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || !b) return 'n/a';
  return `${(a / b).toFixed(2)}x`;
}

/** metric | thingstead | mosquitto | aedes | ts/mosquitto | ts/aedes | ceiling | target */
export function markdownTable(metrics: readonly MetricResult[]): string {
  const head = [
    'metric',
    'thingstead',
    'mosquitto',
    'aedes',
    'ts/mosquitto',
    'ts/aedes',
    'ceiling (node forwarder)',
    'target',
  ];
  const rows = metrics.map((m) => {
    const v = (b: BrokerName) => m.values[b]?.median;
    const cell = (b: BrokerName) => {
      const x = m.values[b];
      if (!x) return '-';
      return fmt(x.median, m.unit) + (x.note ? ` (${x.note})` : '');
    };
    return [
      `${m.label} (${m.unit}, ${m.better} is better)`,
      cell('thingstead'),
      cell('mosquitto'),
      cell('aedes'),
      ratio(v('thingstead'), v('mosquitto')),
      ratio(v('thingstead'), v('aedes')),
      cell('ceiling'),
      m.target ?? '',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const COLORS: Record<BrokerName, string> = {
  thingstead: '#2a9d8f',
  mosquitto: '#e76f51',
  aedes: '#457b9d',
  ceiling: '#adb5bd',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** ">= 250k" -> 250000, "< 2 ms" -> 2, "<= 6 KB" -> 6. */
function targetValue(target: string | undefined): number | null {
  const m = /([\d.]+)\s*([kM]?)/.exec(target ?? '');
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
}

/**
 * Horizontal bars, one group per metric, scaled to the largest broker value of the metric (the ceiling,
 * far off scale on throughput, is clipped and marked), with the issue's target as a dashed line.
 */
export function svgChart(metrics: readonly MetricResult[], subtitle: string): string {
  const brokers: BrokerName[] = ['thingstead', 'mosquitto', 'aedes', 'ceiling'];
  const width = 760;
  const labelW = 110;
  const barMax = width - labelW - 120;
  const rowH = 16;
  let y = 56;
  const parts: string[] = [];
  for (const m of metrics) {
    if (m.key === 'latency_half_rate') continue; // an input, not a result
    const present = brokers.filter((b) => m.values[b]?.median != null);
    if (!present.length) continue;
    const target = targetValue(m.target);
    const scaleOn = present.filter((b) => b !== 'ceiling').map((b) => m.values[b]!.median!);
    const max = Math.max(...(scaleOn.length ? scaleOn : [m.values.ceiling!.median!]), target ?? 0);
    const x = (v: number) => labelW + (max > 0 ? Math.min(1, v / max) * barMax : 0);
    parts.push(
      `<text x="10" y="${y + 12}" font-weight="bold">${esc(m.label)} (${m.unit}, ${m.better} is better)${m.target ? ` - target ${esc(m.target)}` : ''}</text>`,
    );
    y += 18;
    const top = y;
    for (const b of present) {
      const v = m.values[b]!.median!;
      const w = Math.max(1, x(v) - labelW);
      const clipped = v > max;
      parts.push(
        `<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${b}</text>`,
        `<rect x="${labelW}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${COLORS[b]}"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 12}">${esc(fmt(v, m.unit))}${clipped ? ' (off scale)' : ''}</text>`,
      );
      y += rowH;
    }
    if (target !== null) {
      const tx = x(target).toFixed(1);
      parts.push(`<line x1="${tx}" y1="${top}" x2="${tx}" y2="${y}" stroke="#222" stroke-dasharray="4 3"/>`);
    }
    y += 10;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">Thingstead broker benchmark (median of runs)</text>`,
    `<text x="10" y="40" fill="#555">${esc(subtitle)}; dashed line: target</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
