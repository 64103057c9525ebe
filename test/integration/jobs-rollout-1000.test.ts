import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { CancelJobCommand, CreateJobCommand, DescribeJobCommand } from '@aws-sdk/client-iot';
import { waitFor } from '../helpers/platform.js';
import { jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/**
 * The proof of a rollout (issue 11): 1,000 simulated things at a set maximumPerMinute, with a
 * scaled job minute (jobs.minuteMs = 500 ms). The things share 4 MQTT.js connections, each subscribed to
 * the `$aws/things/{thing}/jobs/notify-next` topics of its 250 things (8 filters per SUBSCRIBE), so every notification counted is an
 * MQTT message a subscriber received on that thing's own topic; the devices answer over MQTT on each
 * thing's own `update` topic. Timestamps are taken where the message arrives.
 *
 * 1. Rate: 1,000 things at 100 per job minute. In no job minute (any 500 ms span of queuedAt) are more
 *    than 100 executions created, and the measured notification rate over the rollout, (1,000 - 100)
 *    notifications after the first minute's burst divided by the time to the last one, is between 85% and
 *    100% of the configured rate (a minute starts at the first tick after the previous one ended, so the
 *    rate can only come out lower, by a tick and the machine's load).
 * 2. Abort: 1,000 things at 100 per job minute (ten job minutes: the rollout cannot finish before the
 *    abort, even on a loaded machine), every 5th device reports FAILED, abortConfig cancels at
 *    10% FAILED after 50 executed. The job is CANCELED with ABORT_CONFIG, targets not yet launched are
 *    dropped (far fewer than 1,000 executions), the QUEUED rest is CANCELED, no execution has startedAt after
 *    the abort, no execution is created after it, and devices that still try to start one are refused.
 */
const MINUTE = 500;
const N = 1000;
const CONNECTIONS = 4;

let h: JobsHarness;
beforeAll(async () => {
  h = await jobsPlatform({ jobs: { minuteMs: MINUTE, tickMs: 20 } });
  const names = Array.from({ length: N }, (_, i) => thing(i));
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < N) await h.platform.registry.createThing({ thingName: names[next++]! });
    }),
  );
}, 60_000);
afterAll(() => h?.platform.stop());

const thing = (i: number) => `fleet-${String(i).padStart(4, '0')}`;

interface Notice {
  thing: string;
  jobId: string | undefined;
  at: number;
}

/** 4 connections, each subscribed to the notify-next topics of its share of the 1,000 things. */
async function simulatedFleet(prefix: string, onNotice?: (n: Notice, client: MqttClient) => void) {
  const clients: MqttClient[] = [];
  const notices: Notice[] = [];
  /** Replies to the devices' updates (`.../update/accepted|rejected`, delivered to the requester only). */
  const replies: Array<{ thing: string; outcome: string; code?: string; at: number }> = [];
  for (let c = 0; c < CONNECTIONS; c++) {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.platform.endpoints.mqttPort}`, {
      clientId: `${prefix}-${c}`,
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    const mine = Array.from({ length: N }, (_, i) => i).filter((i) => i % CONNECTIONS === c);
    // AWS's (and the default) 8 topic filters per SUBSCRIBE.
    const topics = mine.map((i) => `$aws/things/${thing(i)}/jobs/notify-next`);
    for (let k = 0; k < topics.length; k += 8)
      await client.subscribeAsync(topics.slice(k, k + 8), { qos: 1 });
    client.on('message', (topic, payload) => {
      const r = /^\$aws\/things\/([^/]+)\/jobs\/[^/]+\/update\/(accepted|rejected)$/.exec(topic);
      if (r) {
        const body = JSON.parse(payload.toString()) as { code?: string };
        replies.push({
          thing: r[1]!,
          outcome: r[2]!,
          ...(body.code ? { code: body.code } : {}),
          at: Date.now(),
        });
        return;
      }
      const m = /^\$aws\/things\/([^/]+)\/jobs\/notify-next$/.exec(topic);
      if (!m) return;
      const body = JSON.parse(payload.toString()) as { execution?: { jobId: string } };
      const n = { thing: m[1]!, jobId: body.execution?.jobId, at: Date.now() };
      notices.push(n);
      onNotice?.(n, client);
    });
    clients.push(client);
  }
  return { notices, replies, end: () => Promise.all(clients.map((c) => c.endAsync())) };
}

describe('a rollout to 1,000 simulated things (issue 11 proof)', () => {
  test('maximumPerMinute 100: the measured rate matches the configuration (85-105% seen by devices), never above it in the store', async () => {
    const RATE = 100;
    const fleet = await simulatedFleet('rate');
    try {
      await h.iot.send(
        new CreateJobCommand({
          jobId: 'rollout-1000',
          targets: [...Array(N).keys()].map((i) => h.arn('thing', thing(i))),
          document: '{"op":"rate"}',
          jobExecutionsRolloutConfig: { maximumPerMinute: RATE },
        }),
      );
      await waitFor(
        () => fleet.notices.filter((n) => n.jobId === 'rollout-1000').length >= N,
        30_000,
        '1,000 notify-next',
      );
      const got = fleet.notices.filter((n) => n.jobId === 'rollout-1000');
      expect(new Set(got.map((n) => n.thing)).size).toBe(N); // every thing, once
      expect(got).toHaveLength(N);
      // Never more than RATE executions created within one job minute (any MINUTE-long span).
      const queued = (await h.platform.jobs.store.listForJob('rollout-1000', { limit: N + 1 }))
        .map((e) => e.queuedAt)
        .sort((a, b) => a - b);
      expect(queued).toHaveLength(N);
      for (let i = 0; i + RATE < queued.length; i++)
        expect(queued[i + RATE]! - queued[i]!).toBeGreaterThanOrEqual(MINUTE);
      // The rate a subscriber sees: after the first minute's burst, N - RATE more over the rollout's span.
      const at = got.map((n) => n.at).sort((a, b) => a - b);
      const perMinute = ((N - RATE) / (at[N - 1]! - at[0]!)) * MINUTE;
      console.log(`rollout-1000: ${perMinute.toFixed(1)} notified per job minute (configured ${RATE})`);
      // The hard limit is the queuedAt check above. Seen by a subscriber, delivery jitter moves the first and
      // last arrival by a few ms either way (101.3/min seen at load 10), so this side allows 5%.
      expect(perMinute).toBeGreaterThanOrEqual(RATE * 0.85);
      expect(perMinute).toBeLessThanOrEqual(RATE * 1.05);
      const d = (await h.iot.send(new DescribeJobCommand({ jobId: 'rollout-1000' }))).job!;
      expect(d.jobProcessDetails).toMatchObject({ numberOfQueuedThings: N });
    } finally {
      await fleet.end();
      // The same things run the abort test: their next pending execution must be its.
      await h.iot.send(new CancelJobCommand({ jobId: 'rollout-1000' }));
      await waitFor(
        async () => (await h.platform.jobs.store.counts('rollout-1000')).QUEUED === undefined,
        10_000,
        'rollout-1000 canceled',
      );
    }
  }, 60_000);

  test('abortConfig: crossing the threshold cancels the queued rest; no execution starts after the abort', async () => {
    const jobId = 'abort-1000';
    let sent = 0;
    const fleet = await simulatedFleet('abort', (n, client) => {
      if (n.jobId !== jobId) return;
      const i = Number(n.thing.slice(n.thing.indexOf('-') + 1));
      // Devices take 0-190 ms to react, so starts keep arriving while the abort happens.
      setTimeout(
        () => {
          const topic = `$aws/things/${n.thing}/jobs/${jobId}/update`;
          sent++;
          void client.publishAsync(topic, JSON.stringify({ status: 'IN_PROGRESS' }), { qos: 1 }).then(() =>
            client.publishAsync(topic, JSON.stringify({ status: i % 5 === 0 ? 'FAILED' : 'SUCCEEDED' }), {
              qos: 1,
            }),
          );
        },
        (i % 20) * 10,
      );
    });
    try {
      await h.iot.send(
        new CreateJobCommand({
          jobId,
          targets: [...Array(N).keys()].map((i) => h.arn('thing', thing(i))),
          document: '{"op":"abort"}',
          jobExecutionsRolloutConfig: { maximumPerMinute: 100 },
          abortConfig: {
            criteriaList: [
              {
                failureType: 'FAILED',
                action: 'CANCEL',
                thresholdPercentage: 10,
                minNumberOfExecutedThings: 50,
              },
            ],
          },
        }),
      );
      const aborted = await waitFor(
        async () => {
          const j = await h.platform.jobs.store.getJob(jobId);
          return j?.status === 'CANCELED' ? j : null;
        },
        20_000,
        'the abort',
      );
      const abortAt = aborted.completedAt!;
      expect(aborted.reasonCode).toBe('ABORT_CONFIG');
      // Three more job minutes: the devices' late updates land (and are refused), nothing more is launched.
      await new Promise((r) => setTimeout(r, 3 * MINUTE));
      const all = await h.platform.jobs.store.listForJob(jobId, { limit: N + 1 });
      expect(all.length).toBeGreaterThanOrEqual(50);
      expect(all.length).toBeLessThan(N); // the targets not yet launched were dropped
      expect(await h.platform.jobs.store.pendingCount(jobId)).toBe(0);
      expect(all.every((e) => e.queuedAt <= abortAt)).toBe(true);
      const started = all.filter((e) => e.startedAt !== null);
      expect(started.every((e) => e.startedAt! <= abortAt)).toBe(true);
      const counts = await h.platform.jobs.store.counts(jobId);
      expect(counts.QUEUED ?? 0).toBe(0);
      expect(counts.CANCELED ?? 0).toBeGreaterThan(0);
      // Every execution not started by the abort was canceled without starting...
      expect(all.filter((e) => e.status === 'CANCELED' && e.startedAt === null)).toHaveLength(
        counts.CANCELED!,
      );
      // ... and devices kept trying to start theirs after it: each such start was refused.
      const refused = fleet.replies.filter((r) => r.outcome === 'rejected');
      expect(refused.length).toBeGreaterThan(0);
      expect(new Set(refused.map((r) => r.code))).toEqual(new Set(['InvalidStateTransition']));
      const startedThings = new Set(started.map((e) => e.thingName));
      expect(refused.every((r) => r.at >= abortAt)).toBe(true);
      expect(refused.filter((r) => !startedThings.has(r.thing)).length).toBeGreaterThan(0);
      const d = (await h.iot.send(new DescribeJobCommand({ jobId }))).job!;
      expect(d.comment).toMatch(
        /FAILED executions reached \d+\.\d% of \d+ executed things \(threshold 10%\)/,
      );
      console.log(
        `abort-1000: ${all.length} executions created of ${N}, ${started.length} started, ` +
          `${counts.CANCELED} canceled (QUEUED at the abort), ${sent} device start attempts, ` +
          `${refused.length} updates refused after it`,
      );
    } finally {
      await fleet.end();
    }
  }, 60_000);
});
