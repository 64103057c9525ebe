/**
 * The edge gateway: field drivers (Modbus TCP, OPC UA, the LAN MQTT listener) feed readings into the disk
 * queue; the uplink drains it to the platform; the gateway's classic shadow carries its health (reported)
 * and its configuration (desired); firmware jobs run through the device agent (src/agent) on the same
 * connection.
 *
 * Contract:
 * - Readings of one device read together (one poll, one data change) that share a topic become one queued
 *   record `{"device": "<name>", "<measure>": value, ...}`; the uplink adds `seq` and `ts` (upstream.ts).
 * - Every reading is appended to the queue before it is sent, online or not: the order on the wire is the
 *   order readings were taken, across outages and restarts (queue.ts).
 * - Health: `state.reported.health` on connect, every `healthIntervalMs` and (debounced 1 s) when a field
 *   device changes state. Configuration: `state.desired.config` =
 *   `{"devices": {"<name>": {"pollIntervalMs": n, "enabled": b}}, "healthIntervalS": n}`, read on connect
 *   (shadow get) and on every delta; what was applied is reported back in `reported.config` (clearing the
 *   delta), anything refused in `reported.configErrors`.
 * - One failing field device never stops the others (driver.ts); nothing here throws into a driver.
 */
import { join } from 'node:path';
import type { Agent } from '../agent/index.js';
import { Counter, Gauge, type Registry } from '../observability/index.js';
import type { BackoffOptions, DeviceHealth, FieldDriver, TagValue } from './driver.js';
import type { LocalBroker } from './local-mqtt.js';
import type { Mapping, MqttDevice } from './mapping.js';
import { createModbusDriver } from './modbus.js';
import { createOpcuaDriver } from './opcua.js';
import { DiskQueue, DROP_REASONS, type FsyncPolicy, type QueueStats } from './queue.js';
import { startUpstream, type Upstream, type UpstreamStats } from './upstream.js';

export interface GatewayOptions {
  /** The gateway's thing name (and MQTT client id). */
  readonly thingName: string;
  readonly mqttUrl: string;
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  readonly mapping: Mapping;
  /** Queue, LAN broker state, OPC UA PKI, job downloads. */
  readonly dataDir: string;
  readonly queue?: {
    readonly maxBytes?: number;
    readonly maxAgeMs?: number;
    readonly segmentBytes?: number;
    readonly fsync?: FsyncPolicy;
  };
  readonly maxInflight?: number;
  readonly fieldBackoff?: BackoffOptions;
  readonly upstreamMaxBackoffMs?: number;
  readonly healthIntervalMs?: number;
  readonly opcuaTrustUnknownServers?: boolean;
  /** Firmware jobs through the device agent; off when absent. */
  readonly jobs?: {
    readonly trustedKeys: readonly string[];
    readonly installCommand: string;
    readonly rollbackCommand?: string;
    readonly initialVersion?: string;
  };
  /** Register the gateway's metrics here (Prometheus). */
  readonly metrics?: Registry;
  readonly log?: (event: string, fields?: Record<string, unknown>) => void;
}

export interface GatewayStats {
  /** Records made from readings (one per device, poll and topic). */
  readonly records: number;
  /** Tag values read. */
  readonly values: number;
  readonly queue: QueueStats;
  readonly upstream: UpstreamStats;
  readonly devices: readonly DeviceHealth[];
}

export interface Gateway {
  readonly thingName: string;
  readonly upstream: Upstream;
  readonly queue: DiskQueue;
  readonly drivers: readonly FieldDriver[];
  /** The LAN listener's port, or null without a `local` section. */
  readonly localPort: number | null;
  stats(): GatewayStats;
  /** The document reported as `state.reported.health`. */
  health(): Record<string, unknown>;
  /** Publish the health now (when connected). */
  reportHealth(): void;
  close(): Promise<void>;
}

interface DesiredConfig {
  devices?: Record<string, { pollIntervalMs?: unknown; enabled?: unknown }>;
  healthIntervalS?: unknown;
}

/**
 * Start the gateway: open the queue, connect upstream, start every field driver.
 * @example const gw = await startGateway({ thingName: 'gw-1', mqttUrl, ca, cert, key, mapping, dataDir });
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const gw = options.thingName;
  const log = options.log ?? (() => undefined);
  const startedAt = Date.now();
  let records = 0;
  let values = 0;
  const dropsByReason: Record<string, number> = {};
  const queue = DiskQueue.open({
    dir: join(options.dataDir, 'queue'),
    ...options.queue,
    onDrop: (reason, n) => {
      dropsByReason[reason] = (dropsByReason[reason] ?? 0) + n;
      log('queue dropped records', { reason, records: n });
    },
  });
  const upstream = startUpstream({
    url: options.mqttUrl,
    clientId: gw,
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    queue,
    maxInflight: options.maxInflight,
    maxBackoffMs: options.upstreamMaxBackoffMs,
    log,
  });

  const onReadings = (device: string, ts: number, tagValues: readonly TagValue[]) => {
    if (tagValues.length === 0) return;
    const byTopic = new Map<string, Record<string, unknown>>();
    for (const v of tagValues) {
      let doc = byTopic.get(v.topic);
      if (!doc) byTopic.set(v.topic, (doc = { device }));
      doc[v.measure] = v.value;
    }
    const batch = [...byTopic].map(([topic, doc]) => ({
      topic,
      payload: Buffer.from(JSON.stringify(doc)),
      ts,
    }));
    queue.appendMany(batch);
    records += batch.length;
    values += tagValues.length;
    upstream.pump();
  };

  let healthTimer: NodeJS.Timeout | null = null;
  let healthDebounce: NodeJS.Timeout | null = null;
  const onHealth = (h: DeviceHealth) => {
    log('field device', { device: h.device, state: h.state, error: h.lastError });
    if (healthDebounce) return;
    healthDebounce = setTimeout(() => {
      healthDebounce = null;
      reportHealth();
    }, 1000);
    healthDebounce.unref();
  };

  const drivers: FieldDriver[] = [];
  for (const device of options.mapping.devices) {
    if (device.protocol === 'modbus')
      drivers.push(
        createModbusDriver({
          device: device,
          gateway: gw,
          onReadings,
          onHealth,
          backoff: options.fieldBackoff,
        }),
      );
    else if (device.protocol === 'opcua')
      drivers.push(
        createOpcuaDriver({
          device: device,
          gateway: gw,
          onReadings,
          onHealth,
          pkiDir: join(options.dataDir, 'opcua-pki'),
          trustUnknownServers: options.opcuaTrustUnknownServers,
          backoff: options.fieldBackoff,
        }),
      );
  }
  let local: LocalBroker | null = null;
  if (options.mapping.local) {
    // Loaded only when configured: the embedded broker brings the broker core, SQLite and the config schema.
    const { startLocalBroker } = await import('./local-mqtt.js');
    local = await startLocalBroker({
      listener: options.mapping.local,
      devices: options.mapping.devices.filter((d): d is MqttDevice => d.protocol === 'mqtt'),
      gateway: gw,
      dataDir: join(options.dataDir, 'lan'),
      onReadings,
      onHealth,
    });
    drivers.push(...local.drivers);
  }
  const byName = new Map(drivers.map((d) => [d.device, d]));

  // --- shadow: health reported, configuration desired ---------------------------------------------------
  const shadow = `$aws/things/${gw}/shadow`;
  let healthIntervalMs = options.healthIntervalMs ?? 30_000;
  let appliedConfig: Record<string, unknown> = {};
  const client = upstream.client;

  function health(): Record<string, unknown> {
    const q = queue.stats();
    const u = upstream.stats();
    const devices = drivers.map((d) => d.health());
    const down = devices.filter((d) => d.state === 'down').length;
    return {
      status: down === 0 && q.dropped.queue_full === 0 ? 'ok' : 'degraded',
      startedAt: Math.floor(startedAt / 1000),
      uptimeS: Math.floor((Date.now() - startedAt) / 1000),
      records,
      queue: {
        pending: q.pending,
        bytes: q.bytes,
        oldestAgeS: q.oldestTs === null ? null : Math.floor((Date.now() - q.oldestTs) / 1000),
        dropped: q.dropped,
      },
      upstream: {
        connects: u.connects,
        acked: u.acked,
        resent: u.resent,
        refused: u.refused,
        retried: u.retried,
        throttled: u.throttledUntil !== null,
      },
      devices: Object.fromEntries(
        devices.map((d) => [
          d.device,
          {
            protocol: d.protocol,
            state: d.state,
            lastError: d.lastError,
            failures: d.failures,
            lastReadAt: d.lastReadAt === null ? null : Math.floor(d.lastReadAt / 1000),
            reads: d.reads,
            errors: d.errors,
          },
        ]),
      ),
    };
  }

  function reportHealth(): void {
    if (!client.connected) return;
    client.publish(`${shadow}/update`, JSON.stringify({ state: { reported: { health: health() } } }), {
      qos: 1,
    });
  }

  const scheduleHealth = () => {
    if (healthTimer) clearInterval(healthTimer);
    healthTimer = setInterval(reportHealth, healthIntervalMs);
    healthTimer.unref();
  };

  function applyConfig(desired: DesiredConfig): void {
    const errors: string[] = [];
    const applied: Record<string, unknown> = { ...appliedConfig };
    const devices: Record<string, Record<string, unknown>> = {
      ...((applied.devices as Record<string, Record<string, unknown>> | undefined) ?? {}),
    };
    for (const [name, c] of Object.entries(desired.devices ?? {})) {
      const driver = byName.get(name);
      if (!driver) {
        errors.push(`devices.${name}: no such field device in the mapping`);
        continue;
      }
      if (c === null) continue;
      const d: Record<string, unknown> = { ...devices[name] };
      if (c.pollIntervalMs !== undefined) {
        const ms = c.pollIntervalMs;
        if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 10 || ms > 86_400_000)
          errors.push(`devices.${name}.pollIntervalMs: must be a whole number of ms in 10..86400000`);
        else if (!driver.setInterval(ms))
          errors.push(`devices.${name}.pollIntervalMs: this device is not polled (it pushes its data)`);
        else d.pollIntervalMs = ms;
      }
      if (c.enabled !== undefined) {
        if (typeof c.enabled !== 'boolean') errors.push(`devices.${name}.enabled: must be true or false`);
        else {
          driver.setEnabled(c.enabled);
          d.enabled = c.enabled;
        }
      }
      devices[name] = d;
    }
    if (Object.keys(devices).length > 0) applied.devices = devices;
    if (desired.healthIntervalS !== undefined) {
      const s = desired.healthIntervalS;
      if (typeof s !== 'number' || s < 1 || s > 86_400)
        errors.push('healthIntervalS: must be 1..86400 seconds');
      else {
        healthIntervalMs = s * 1000;
        applied.healthIntervalS = s;
        scheduleHealth();
      }
    }
    appliedConfig = applied;
    log('configuration applied', { applied, errors });
    client.publish(
      `${shadow}/update`,
      JSON.stringify({
        state: {
          reported: { config: applied, configErrors: errors.length ? errors : null, health: health() },
        },
      }),
      { qos: 1 },
    );
  }

  client.on('message', (topic, payload) => {
    if (topic !== `${shadow}/update/delta` && topic !== `${shadow}/get/accepted`) return;
    let doc: any;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const config = topic.endsWith('/delta') ? doc?.state?.config : doc?.state?.desired?.config;
    if (config && typeof config === 'object') applyConfig(config as DesiredConfig);
  });
  client.on('connect', () => {
    client
      .subscribeAsync([`${shadow}/update/delta`, `${shadow}/get/accepted`], { qos: 1 })
      .then(() => {
        client.publish(`${shadow}/get`, '{}', { qos: 1 });
        reportHealth();
      })
      .catch((err: unknown) => log('shadow subscribe failed', { error: (err as Error).message }));
  });
  scheduleHealth();

  // --- jobs: the device agent on the same connection ------------------------------------------------------
  let agent: Agent | null = null;
  if (options.jobs) {
    const jobs = options.jobs;
    // Not awaited: the agent subscribes through the uplink, which may be offline at start. Loaded only when
    // firmware jobs are configured (the agent brings the CBOR codec and the download and signing code).
    import('../agent/index.js')
      .then(({ startAgent }) =>
        startAgent({
          mqttUrl: options.mqttUrl,
          thingName: gw,
          client,
          ca: options.ca,
          cert: options.cert,
          key: options.key,
          trustedKeys: jobs.trustedKeys,
          workDir: join(options.dataDir, 'ota'),
          installCommand: jobs.installCommand,
          ...(jobs.rollbackCommand ? { rollbackCommand: jobs.rollbackCommand } : {}),
          initialVersion: jobs.initialVersion,
          log,
        }),
      )
      .then(
        (a) => {
          agent = a;
        },
        (err: unknown) => log('jobs agent failed to start', { error: (err as Error).message }),
      );
  }

  if (options.metrics)
    registerMetrics(options.metrics, () => ({
      records,
      values,
      queue: queue.stats(),
      upstream: upstream.stats(),
      devices: drivers.map((d) => d.health()),
    }));

  for (const d of drivers) d.start();
  log('gateway started', { thing: gw, devices: drivers.length, pending: queue.stats().pending });

  return {
    thingName: gw,
    upstream,
    queue,
    drivers,
    localPort: local?.port ?? null,
    stats: () => ({
      records,
      values,
      queue: queue.stats(),
      upstream: upstream.stats(),
      devices: drivers.map((d) => d.health()),
    }),
    health,
    reportHealth,
    async close() {
      if (healthTimer) clearInterval(healthTimer);
      if (healthDebounce) clearTimeout(healthDebounce);
      for (const d of drivers) await d.close();
      await local?.close();
      await agent?.close();
      await upstream.close();
      queue.close();
    },
  };
}

/** The gateway's Prometheus metrics, read from its counters at scrape time. */
function registerMetrics(registry: Registry, read: () => GatewayStats): void {
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (g: Gauge, s: GatewayStats) => void,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this, read());
      },
    });
  const counter = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (c: Counter, s: GatewayStats) => void,
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this, read());
      },
    });
  counter(
    'thingstead_gateway_records_total',
    'Records made from field readings (one per device, read and topic)',
    [],
    (c, s) => c.inc(s.records),
  );
  counter('thingstead_gateway_values_total', 'Tag values read from field devices', [], (c, s) =>
    c.inc(s.values),
  );
  counter('thingstead_gateway_field_reads_total', 'Successful reads per field device', ['device'], (c, s) => {
    for (const d of s.devices) c.inc({ device: d.device }, d.reads);
  });
  counter(
    'thingstead_gateway_field_errors_total',
    'Failed reads and connects per field device',
    ['device'],
    (c, s) => {
      for (const d of s.devices) c.inc({ device: d.device }, d.errors);
    },
  );
  gauge(
    'thingstead_gateway_field_up',
    'Whether a field device is up (1) or not (0)',
    ['device', 'state'],
    (g, s) => {
      for (const d of s.devices) g.set({ device: d.device, state: d.state }, d.state === 'up' ? 1 : 0);
    },
  );
  gauge(
    'thingstead_gateway_queue_pending',
    'Records in the disk queue not yet acknowledged upstream',
    [],
    (g, s) => g.set(s.queue.pending),
  );
  gauge('thingstead_gateway_queue_bytes', 'Bytes of the disk queue on disk', [], (g, s) =>
    g.set(s.queue.bytes),
  );
  counter(
    'thingstead_gateway_queue_dropped_total',
    'Records dropped unsent, by reason',
    ['reason'],
    (c, s) => {
      for (const r of DROP_REASONS) c.inc({ reason: r }, s.queue.dropped[r]);
    },
  );
  counter('thingstead_gateway_upstream_acked_total', 'Records acknowledged by the platform', [], (c, s) =>
    c.inc(s.upstream.acked),
  );
  counter(
    'thingstead_gateway_upstream_resent_total',
    'Records sent again after a lost connection',
    [],
    (c, s) => c.inc(s.upstream.resent),
  );
  counter(
    'thingstead_gateway_upstream_refused_total',
    'Records the platform refused, by PUBACK reason code',
    ['reason_code'],
    (c, s) => {
      for (const [k, v] of Object.entries(s.upstream.refused)) c.inc({ reason_code: k }, v);
    },
  );
  counter(
    'thingstead_gateway_upstream_retried_total',
    'Records the platform refused for now (0x97 quota exceeded) and that were sent again, by reason code',
    ['reason_code'],
    (c, s) => {
      for (const [k, v] of Object.entries(s.upstream.retried)) c.inc({ reason_code: k }, v);
    },
  );
  gauge('thingstead_gateway_upstream_connected', 'Whether the uplink is connected', [], (g, s) =>
    g.set(s.upstream.connected ? 1 : 0),
  );
}
