import type { Broker } from '../mqtt/index.js';
import type { Registry } from '../observability/index.js';
import type { FleetIndex, Predicate } from '../registry/index.js';
import type { PresenceEvent, PresenceLog } from './presence.js';

/**
 * The fleet overview the console shows and streams: things connected and disconnected (in total, by thing
 * type and by static group), recent disconnects and their reasons, messages per second in and out, rule
 * and sink health, and every drop counter by reason. Read from the fleet index, the broker's live state and
 * the platform's own Prometheus metrics (the same numbers /metrics serves), never from the hot path.
 *
 * Cost: the fleet counts walk the fleet index (about 10 ms at 100,000 things), so they are recounted at
 * most every `fleetEveryMs`; the rates are differences of counters between two samples.
 */
export interface FleetCount {
  readonly name: string;
  readonly total: number;
  readonly connected: number;
}

export interface Overview {
  readonly at: number;
  readonly things: number;
  readonly connected: number;
  readonly disconnected: number;
  /** Open MQTT connections, things or not. */
  readonly connections: number;
  readonly byType: readonly FleetCount[];
  /** The largest static groups (at most 12). */
  readonly byGroup: readonly FleetCount[];
  readonly messagesPerSecond: { readonly in: number; readonly out: number };
  readonly recentDisconnects: readonly PresenceEvent[];
  /** Disconnects since start, by AWS disconnectReason. */
  readonly disconnectReasons: ReadonlyArray<{ reason: string; count: number }>;
  /** Non-zero drop counters: metric (source), reason and count. */
  readonly drops: ReadonlyArray<{ source: string; reason: string; count: number }>;
  readonly rules: ReadonlyArray<{
    rule: string;
    matched: number;
    ok: number;
    failed: number;
    dropped: number;
  }>;
  readonly sinks: { readonly queueDepth: number; readonly outboxPending: number };
}

type Sample = ReadonlyArray<{ labels: Record<string, string | number>; value: number }>;

const ALL: Predicate = () => true;

export function createOverview(o: {
  readonly index: FleetIndex;
  readonly broker: Broker;
  readonly metrics: Registry;
  readonly presence: PresenceLog;
  readonly fleetEveryMs?: number;
}) {
  const fleetEveryMs = o.fleetEveryMs ?? 5000;
  let fleet: { at: number; value: Pick<Overview, 'things' | 'connected' | 'byType' | 'byGroup'> } | null =
    null;
  let last: { at: number; in: number; out: number } | null = null;
  let rate = { in: 0, out: 0 };

  const sample = async (name: string): Promise<Sample> => {
    const metric = o.metrics.getSingleMetric(name);
    if (!metric) return [];
    return ((await metric.get()) as { values: Sample }).values;
  };
  const sum = (values: Sample, match: (l: Record<string, string | number>) => boolean) =>
    values.reduce((n, v) => (match(v.labels) ? n + v.value : n), 0);

  function countFleet() {
    const things = o.index.search(ALL, undefined, Number.MAX_SAFE_INTEGER).things;
    const types = new Map<string, { total: number; connected: number }>();
    const groups = new Map<string, { total: number; connected: number }>();
    let connected = 0;
    const bump = (m: Map<string, { total: number; connected: number }>, key: string, on: boolean) => {
      let c = m.get(key);
      if (!c) m.set(key, (c = { total: 0, connected: 0 }));
      c.total++;
      if (on) c.connected++;
    };
    for (const t of things) {
      const on = o.broker.isConnected(t.thingName);
      if (on) connected++;
      bump(types, t.thingTypeName ?? '(no type)', on);
      for (const g of t.groups) bump(groups, g, on);
    }
    const list = (m: Map<string, { total: number; connected: number }>, max: number) =>
      [...m]
        .map(([name, c]) => ({ name, ...c }))
        .sort((a, b) => b.total - a.total || a.name.localeCompare(b.name))
        .slice(0, max);
    return { things: things.length, connected, byType: list(types, 24), byGroup: list(groups, 12) };
  }

  return {
    /** The overview now; fleet counts at most `fleetEveryMs` old. */
    async read(now = Date.now()): Promise<Overview> {
      if (!fleet || now - fleet.at >= fleetEveryMs) fleet = { at: now, value: countFleet() };
      const [packets, connections, disconnects, matched, actions, ruleDrops, queue, outbox] =
        await Promise.all([
          sample('thingstead_mqtt_packets_total'),
          sample('thingstead_mqtt_connections'),
          sample('thingstead_mqtt_disconnects_total'),
          sample('thingstead_rule_matched_total'),
          sample('thingstead_rule_action_total'),
          sample('thingstead_rule_dropped_total'),
          sample('thingstead_rules_queue_depth'),
          sample('thingstead_rules_outbox_pending'),
        ]);
      const pin = sum(packets, (l) => l.direction === 'in' && l.type === 'publish');
      const pout = sum(packets, (l) => l.direction === 'out' && l.type === 'publish');
      // A rate over at least ~1 s: readers closer together than that share the last one.
      if (!last) last = { at: now, in: pin, out: pout };
      else if (now - last.at >= 900) {
        const dt = (now - last.at) / 1000;
        rate = { in: Math.max(0, (pin - last.in) / dt), out: Math.max(0, (pout - last.out) / dt) };
        last = { at: now, in: pin, out: pout };
      }

      const drops: Array<{ source: string; reason: string; count: number }> = [];
      for (const metric of o.metrics.getMetricsAsArray()) {
        const name = (metric as { name?: string }).name ?? '';
        if (!name.endsWith('dropped_total')) continue;
        for (const v of await sample(name)) {
          if (!v.value) continue;
          const { reason, ...rest } = v.labels;
          const where = Object.values(rest).join(' ');
          const source = name.replace(/^thingstead_/, '').replace(/_dropped_total$/, '');
          drops.push({
            source: where ? `${source} ${where}` : source,
            reason: String(reason ?? 'unknown'),
            count: v.value,
          });
        }
      }
      drops.sort((a, b) => b.count - a.count);

      const rules = new Map<
        string,
        { rule: string; matched: number; ok: number; failed: number; dropped: number }
      >();
      const rule = (name: string) => {
        let r = rules.get(name);
        if (!r) rules.set(name, (r = { rule: name, matched: 0, ok: 0, failed: 0, dropped: 0 }));
        return r;
      };
      for (const v of matched) rule(String(v.labels.rule)).matched += v.value;
      for (const v of actions) {
        const r = rule(String(v.labels.rule));
        if (v.labels.outcome === 'ok') r.ok += v.value;
        else if (v.labels.outcome === 'failed') r.failed += v.value;
      }
      for (const v of ruleDrops) rule(String(v.labels.rule)).dropped += v.value;

      const f = fleet.value;
      return {
        at: now,
        things: f.things,
        connected: f.connected,
        disconnected: f.things - f.connected,
        connections: sum(connections, () => true),
        byType: f.byType,
        byGroup: f.byGroup,
        messagesPerSecond: { in: Math.round(rate.in * 10) / 10, out: Math.round(rate.out * 10) / 10 },
        recentDisconnects: o.presence.recentDisconnects(20),
        disconnectReasons: disconnects
          .filter((v) => v.value > 0)
          .map((v) => ({ reason: String(v.labels.reason), count: v.value }))
          .sort((a, b) => b.count - a.count),
        drops,
        rules: [...rules.values()].sort((a, b) => a.rule.localeCompare(b.rule)),
        sinks: { queueDepth: sum(queue, () => true), outboxPending: sum(outbox, () => true) },
      };
    },
    /** Forget the cached fleet counts (tests; a big change the console should show at once). */
    invalidate() {
      fleet = null;
    },
  };
}

export type OverviewReader = ReturnType<typeof createOverview>;
