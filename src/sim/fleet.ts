/**
 * The simulated fleet: N things, each one MQTT 5 connection over mutual TLS with its own certificate, that
 * publish telemetry by the profile's patterns, report their shadow and follow its desired state, and run
 * the jobs they are sent (start-next, work, SUCCEEDED/FAILED). It measures what a device sees: connect
 * time, PUBACK latency, shadow update -> accepted, job notify -> final update accepted.
 *
 * Contract: connections are opened at most `connectConcurrency` at a time; latency samples are kept in a
 * bounded reservoir (50,000 per kind), so a long run does not grow memory; a device that fails to connect is
 * counted and the rest run on.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { valueAt, type Profile } from './profile.js';

export interface SimDevice {
  readonly thingName: string;
  readonly cert: string;
  readonly key: string;
}

export interface SimOptions {
  readonly mqttUrl: string;
  readonly ca?: string;
  readonly devices: readonly SimDevice[];
  readonly profile: Profile;
  /** Run this long after the last connection (seconds). */
  readonly durationS: number;
  readonly connectConcurrency?: number;
  readonly onProgress?: (p: SimProgress) => void;
  readonly progressEveryMs?: number;
}

export interface Percentiles {
  readonly count: number;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

export interface SimProgress {
  readonly elapsedS: number;
  readonly connected: number;
  readonly published: number;
  readonly acked: number;
  readonly shadowUpdates: number;
  readonly jobsDone: number;
}

export interface SimReport {
  readonly things: number;
  readonly connected: number;
  readonly connectFailures: number;
  readonly firstConnectError: string | null;
  readonly durationS: number;
  readonly connectMs: Percentiles;
  readonly telemetry: {
    published: number;
    acked: number;
    failed: number;
    perSecond: number;
    ackMs: Percentiles;
  };
  readonly shadow: {
    updates: number;
    accepted: number;
    rejected: number;
    deltasFollowed: number;
    acceptedMs: Percentiles;
  };
  readonly jobs: { started: number; succeeded: number; failed: number; notifyToDoneMs: Percentiles };
}

/** A bounded sample of latencies (reservoir sampling keeps it uniform over the whole run). */
export class Reservoir {
  private readonly samples: number[] = [];
  private seen = 0;
  constructor(private readonly size = 50_000) {}

  add(v: number): void {
    this.seen++;
    if (this.samples.length < this.size) this.samples.push(v);
    else {
      const i = Math.floor(Math.random() * this.seen);
      if (i < this.size) this.samples[i] = v;
    }
  }

  percentiles(): Percentiles {
    const s = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) =>
      s.length ? Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10 : null;
    return {
      count: this.seen,
      p50: at(0.5),
      p95: at(0.95),
      p99: at(0.99),
      max: s.length ? Math.round(s[s.length - 1]! * 10) / 10 : null,
    };
  }
}

/**
 * Run the fleet for `durationS` and report.
 * @example const report = await runFleet({ mqttUrl, ca, devices, profile, durationS: 60 });
 */
export async function runFleet(options: SimOptions): Promise<SimReport> {
  const { profile } = options;
  const connectMs = new Reservoir();
  const ackMs = new Reservoir();
  const shadowMs = new Reservoir();
  const jobMs = new Reservoir();
  const c = {
    connected: 0,
    connectFailures: 0,
    published: 0,
    acked: 0,
    failed: 0,
    updates: 0,
    accepted: 0,
    rejected: 0,
    deltas: 0,
    jobsStarted: 0,
    succeeded: 0,
    jobsFailed: 0,
  };
  let firstConnectError: string | null = null;
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  const start = Date.now();
  const elapsedS = () => (Date.now() - start) / 1000;
  let stopping = false;

  const progress = options.onProgress
    ? setInterval(
        () =>
          options.onProgress!({
            elapsedS: Math.round(elapsedS()),
            connected: c.connected,
            published: c.published,
            acked: c.acked,
            shadowUpdates: c.accepted,
            jobsDone: c.succeeded + c.jobsFailed,
          }),
        options.progressEveryMs ?? 5000,
      )
    : null;

  async function runDevice(d: SimDevice, index: number): Promise<void> {
    const t0 = performance.now();
    let client: MqttClient;
    try {
      client = await mqtt.connectAsync(options.mqttUrl, {
        clientId: d.thingName,
        protocolVersion: 5,
        ca: options.ca,
        cert: d.cert,
        key: d.key,
        reconnectPeriod: 2000,
        connectTimeout: 30_000,
        clean: true,
      });
    } catch (err) {
      c.connectFailures++;
      firstConnectError ??= `${d.thingName}: ${(err as Error).message}`;
      return;
    }
    connectMs.add(performance.now() - t0);
    c.connected++;
    clients.push(client);
    const phase = (index * 0.618) % 1;
    const shadow = `$aws/things/${d.thingName}/shadow`;
    const jobs = `$aws/things/${d.thingName}/jobs`;
    const waiting = new Map<
      string,
      { at: number; kind: 'shadow' | 'job-start' | 'job-done'; jobAt?: number }
    >();
    let token = 0;
    const telemetryTopic = profile.telemetry.topic.replace(/\{thing\}/g, d.thingName);
    let last: Record<string, number> = {};

    const reportShadow = (reported: Record<string, unknown>) => {
      const clientToken = `s${++token}`;
      waiting.set(clientToken, { at: performance.now(), kind: 'shadow' });
      c.updates++;
      client.publish(`${shadow}/update`, JSON.stringify({ state: { reported }, clientToken }), { qos: 1 });
    };
    client.on('message', (topic, payload) => {
      let body: any;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      if (topic === `${shadow}/update/delta`) {
        if (profile.shadow?.followDesired && body?.state) {
          c.deltas++;
          reportShadow(body.state as Record<string, unknown>);
        }
        return;
      }
      if (topic === `${jobs}/notify-next`) {
        if (body?.execution && profile.jobs?.run) {
          const clientToken = `j${++token}`;
          waiting.set(clientToken, { at: performance.now(), kind: 'job-start', jobAt: performance.now() });
          client.publish(`${jobs}/start-next`, JSON.stringify({ clientToken }), { qos: 1 });
        }
        return;
      }
      const w = typeof body?.clientToken === 'string' ? waiting.get(body.clientToken) : undefined;
      if (!w) return;
      waiting.delete(body.clientToken);
      const ok = topic.endsWith('/accepted');
      if (w.kind === 'shadow') {
        if (ok) {
          c.accepted++;
          shadowMs.add(performance.now() - w.at);
        } else c.rejected++;
      } else if (w.kind === 'job-start' && ok && body.execution) {
        c.jobsStarted++;
        const jobId = body.execution.jobId as string;
        const t = setTimeout(() => {
          const clientToken = `j${++token}`;
          waiting.set(clientToken, { at: performance.now(), kind: 'job-done', jobAt: w.jobAt });
          const status = profile.jobs!.outcome;
          client.publish(
            `${jobs}/${jobId}/update`,
            JSON.stringify({ status, statusDetails: { by: 'thingstead sim' }, clientToken }),
            { qos: 1 },
          );
        }, profile.jobs!.workMs);
        timers.push(t);
      } else if (w.kind === 'job-done') {
        if (ok && profile.jobs!.outcome === 'SUCCEEDED') c.succeeded++;
        else c.jobsFailed++;
        jobMs.add(performance.now() - w.jobAt!);
      }
    });
    const filters = [
      ...(profile.shadow
        ? [`${shadow}/update/accepted`, `${shadow}/update/rejected`, `${shadow}/update/delta`]
        : []),
      ...(profile.jobs?.run
        ? [
            `${jobs}/notify-next`,
            `${jobs}/start-next/accepted`,
            `${jobs}/+/update/accepted`,
            `${jobs}/+/update/rejected`,
          ]
        : []),
    ];
    if (filters.length) await client.subscribeAsync(filters, { qos: 1 }).catch(() => undefined);
    if (profile.jobs?.run) {
      // Pick up a job queued before this thing connected.
      const clientToken = `j${++token}`;
      waiting.set(clientToken, { at: performance.now(), kind: 'job-start', jobAt: performance.now() });
      client.publish(`${jobs}/start-next`, JSON.stringify({ clientToken }), { qos: 1 });
    }

    const publish = () => {
      if (stopping || !client.connected) return;
      const t = elapsedS();
      last = Object.fromEntries(
        Object.entries(profile.telemetry.measures).map(([k, m]) => [k, valueAt(m, t, phase)]),
      );
      const sent = performance.now();
      c.published++;
      client.publish(
        telemetryTopic,
        JSON.stringify({ ...last, ts: Date.now() }),
        { qos: profile.telemetry.qos },
        (err) => {
          if (err) c.failed++;
          else {
            c.acked++;
            if (profile.telemetry.qos === 1) ackMs.add(performance.now() - sent);
          }
        },
      );
    };
    // Spread the fleet over one interval so the publishes do not arrive in step.
    const offset = Math.floor(phase * profile.telemetry.intervalMs);
    timers.push(
      setTimeout(() => {
        publish();
        timers.push(setInterval(publish, profile.telemetry.intervalMs));
      }, offset),
    );
    if (profile.shadow) {
      reportShadow({ sim: { startedAt: Math.floor(Date.now() / 1000) } });
      timers.push(
        setInterval(
          () => client.connected && reportShadow({ telemetry: last }),
          profile.shadow.reportEveryS * 1000,
        ),
      );
    }
  }

  // Connect with bounded concurrency.
  const concurrency = options.connectConcurrency ?? 50;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, options.devices.length) }, async () => {
      while (next < options.devices.length) {
        const i = next++;
        await runDevice(options.devices[i]!, i);
      }
    }),
  );
  await new Promise((r) => setTimeout(r, options.durationS * 1000));
  stopping = true;
  for (const t of timers) clearTimeout(t);
  if (progress) clearInterval(progress);
  await new Promise((r) => setTimeout(r, 500)); // let the last acknowledgements in
  await Promise.all(clients.map((cl) => cl.endAsync(true).catch(() => undefined)));
  const durationS = Math.round(elapsedS() * 10) / 10;
  return {
    things: options.devices.length,
    connected: c.connected,
    connectFailures: c.connectFailures,
    firstConnectError,
    durationS,
    connectMs: connectMs.percentiles(),
    telemetry: {
      published: c.published,
      acked: c.acked,
      failed: c.failed,
      perSecond: Math.round(c.acked / Math.max(1, options.durationS)),
      ackMs: ackMs.percentiles(),
    },
    shadow: {
      updates: c.updates,
      accepted: c.accepted,
      rejected: c.rejected,
      deltasFollowed: c.deltas,
      acceptedMs: shadowMs.percentiles(),
    },
    jobs: {
      started: c.jobsStarted,
      succeeded: c.succeeded,
      failed: c.jobsFailed,
      notifyToDoneMs: jobMs.percentiles(),
    },
  };
}
