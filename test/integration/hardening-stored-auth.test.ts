/**
 * Regressions from the independent attack (issue 8): stored state is authorized like live traffic.
 * - Messages queued for an offline session are checked against iot:Receive when they are delivered, for
 *   the connection receiving them now (a permission removed while offline; a session taken over by another
 *   certificate allowed to connect with that client id).
 * - In-flight messages resent after a takeover are checked the same way; stored subscriptions are checked
 *   again against iot:Subscribe when the session resumes.
 * - Wills get the checks a PUBLISH gets: no `$aws/events/...` spoofing, iot:RetainPublish for a retained will.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatePolicyVersionCommand, type IoTClient } from '@aws-sdk/client-iot';
import type { MqttClient } from 'mqtt';
import { scrapeMetric, type TestPlatform } from '../helpers/platform.js';
import { connectTls, createDevice, securePlatform, waitFor, type Device } from './security-helpers.js';

let platform: TestPlatform;
let iot: IoTClient;
let arn: string;
let seq = 0;
const uid = (p: string) => `${p}${process.pid}x${++seq}`;

const receiveDrops = () =>
  scrapeMetric(platform, 'thingstead_mqtt_messages_dropped_total', /reason="not_authorized_receive"/);
const publishDrops = () =>
  scrapeMetric(platform, 'thingstead_mqtt_messages_dropped_total', /reason="not_authorized_publish"/);

/** A policy letting `clientId` connect and use topics under `prefix/` (Receive optional). */
function statements(clientId: string, prefix: string, opts: { receive?: boolean; retain?: boolean } = {}) {
  const s: object[] = [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/${clientId}` },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${arn}:topicfilter/${prefix}/*` },
    { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/${prefix}/*` },
  ];
  if (opts.receive !== false)
    s.push({ Effect: 'Allow', Action: 'iot:Receive', Resource: `${arn}:topic/${prefix}/*` });
  if (opts.retain)
    s.push({ Effect: 'Allow', Action: 'iot:RetainPublish', Resource: `${arn}:topic/${prefix}/*` });
  return s;
}

const persistent = { clean: false, properties: { sessionExpiryInterval: 600 } };

async function offlineWithQueue(device: Device, clientId: string, prefix: string, n: number): Promise<void> {
  const c = await connectTls(platform, device, clientId, persistent);
  await c.subscribeAsync(`${prefix}/#`, { qos: 1 });
  await c.endAsync();
  await waitFor(() => !platform.broker.isConnected(clientId), 5000, 'offline');
  for (let i = 0; i < n; i++)
    platform.broker.publish({
      topic: `${prefix}/m${i}`,
      payload: Buffer.from(`${i}`),
      qos: 1,
      retain: false,
    });
}

/**
 * A victim device, and an attacker whose certificate may connect with the victim's client id but only use
 * its own topics.
 */
async function victimAndAttacker(vp: string, ap: string) {
  const victim = uid(vp);
  const attacker = uid(ap);
  const v = await createDevice(iot, victim, { name: `${victim}-p`, statements: statements(victim, victim) });
  const a = await createDevice(iot, attacker, {
    name: `${attacker}-p`,
    statements: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/${victim}` },
      ...statements(attacker, attacker),
    ],
  });
  return { victim, attacker, v, a };
}

beforeAll(async () => {
  ({ platform, iot, account: arn } = await securePlatform());
});
afterAll(async () => {
  await platform?.stop();
});

describe('stored messages are authorized at delivery', () => {
  it('a Receive permission removed while the device was offline stops its queue (control: kept permission delivers)', async () => {
    const id = uid('q');
    const keep = uid('k');
    const dev = await createDevice(iot, id, { name: `${id}-p`, statements: statements(id, id) });
    const ctl = await createDevice(iot, keep, { name: `${keep}-p`, statements: statements(keep, keep) });
    await offlineWithQueue(dev, id, id, 3);
    await offlineWithQueue(ctl, keep, keep, 3);

    // While offline: a new default version without iot:Receive.
    await iot.send(
      new CreatePolicyVersionCommand({
        policyName: `${id}-p`,
        setAsDefault: true,
        policyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: statements(id, id, { receive: false }),
        }),
      }),
    );

    const before = await receiveDrops();
    const controlGot: string[] = [];
    const control = await connectTls(platform, ctl, keep, persistent, controlGot);
    const got: string[] = [];
    const c = await connectTls(platform, dev, id, persistent, got);
    await waitFor(() => controlGot.length === 3, 5000, 'control queue delivered');
    await waitFor(async () => (await receiveDrops()) >= before + 3, 5000, 'queued messages refused');
    expect(got).toEqual([]);
    expect(controlGot.sort()).toEqual([`${keep}/m0`, `${keep}/m1`, `${keep}/m2`]);
    await Promise.all([c.endAsync(), control.endAsync()]);
  });

  it('a certificate allowed to connect as another client id takes the session over but gets none of its messages', async () => {
    const { victim, attacker, v, a } = await victimAndAttacker('v', 'a');
    await offlineWithQueue(v, victim, victim, 3);

    const revokedBefore = await scrapeMetric(
      platform,
      'thingstead_mqtt_messages_dropped_total',
      /reason="subscription_revoked"/,
    );
    const before = await receiveDrops();
    const got: string[] = [];
    const c = await connectTls(platform, a, victim, persistent, got);
    await waitFor(async () => (await receiveDrops()) >= before + 3, 5000, 'queued messages refused');
    // The stored subscription to the victim's topics is not the attacker's to keep.
    expect(
      await scrapeMetric(platform, 'thingstead_mqtt_messages_dropped_total', /reason="subscription_revoked"/),
    ).toBeGreaterThanOrEqual(revokedBefore + 1);
    platform.broker.publish({ topic: `${victim}/live`, payload: Buffer.from('x'), qos: 1, retain: false });
    await c.publishAsync(`${attacker}/ping`, 'p', { qos: 1 });
    expect(got).toEqual([]);
    await c.endAsync();
  });

  it('in-flight messages are not resent to a certificate that takes the session over', async () => {
    const { victim, attacker, v, a } = await victimAndAttacker('i', 'b');
    // The victim receives a QoS 1 message and never acknowledges it (its PUBACK is withheld).
    const vc: MqttClient = await connectTls(platform, v, victim, persistent);
    await vc.subscribeAsync(`${victim}/#`, { qos: 1 });
    let received = 0;
    vc.handleMessage = (_packet, _done) => {
      received++; // never call done(): no PUBACK
    };
    platform.broker.publish({ topic: `${victim}/secret`, payload: Buffer.from('s'), qos: 1, retain: false });
    await waitFor(() => received === 1, 5000, 'victim got the message');

    const before = await receiveDrops();
    const got: string[] = [];
    const c = await connectTls(platform, a, victim, persistent, got); // takes over: the victim is disconnected
    await waitFor(async () => (await receiveDrops()) >= before + 1, 5000, 'in-flight message refused');
    await c.publishAsync(`${attacker}/ping`, 'p', { qos: 1 });
    expect(got).toEqual([]);
    vc.end(true);
    await c.endAsync();
  });
});

describe('wills get the checks a PUBLISH gets', () => {
  async function dropWith(device: Device, clientId: string, will: { topic: string; retain: boolean }) {
    const c = await connectTls(platform, device, clientId, {
      will: { topic: will.topic, payload: Buffer.from('gone'), qos: 0, retain: will.retain },
    });
    c.stream.destroy(); // connection lost: the will fires
    await waitFor(() => !platform.broker.isConnected(clientId), 5000, 'connection gone');
  }

  it('a will cannot publish a spoofed $aws/events presence event, even with iot:Publish on everything', async () => {
    const id = uid('w');
    const dev = await createDevice(iot, id, {
      name: `${id}-p`,
      statements: [
        { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/${id}` },
        { Effect: 'Allow', Action: 'iot:Publish', Resource: `${arn}:topic/*` },
      ],
    });
    const spoofed = `$aws/events/presence/connected/${id}-victim`;
    const seen: string[] = [];
    const off = platform.broker.subscribeInternal(spoofed, (m) => seen.push(m.topic));
    const ok: string[] = [];
    const offOk = platform.broker.subscribeInternal(`${id}/status`, (m) => ok.push(m.topic));
    const before = await publishDrops();
    await dropWith(dev, id, { topic: spoofed, retain: false });
    await waitFor(async () => (await publishDrops()) >= before + 1, 5000, 'will refused');
    // Control: the same device's will on an ordinary topic is published.
    await dropWith(dev, `${id}`, { topic: `${id}/status`, retain: false });
    await waitFor(() => ok.length === 1, 5000, 'control will published');
    expect(seen).toEqual([]);
    off();
    offOk();
  });

  it('a retained will needs iot:RetainPublish (control: with it, the will is retained)', async () => {
    const id = uid('r');
    const ctl = uid('rc');
    const dev = await createDevice(iot, id, { name: `${id}-p`, statements: statements(id, id) });
    const withRetain = await createDevice(iot, ctl, {
      name: `${ctl}-p`,
      statements: statements(ctl, ctl, { retain: true }),
    });
    const before = await publishDrops();
    await dropWith(dev, id, { topic: `${id}/status`, retain: true });
    await dropWith(withRetain, ctl, { topic: `${ctl}/status`, retain: true });
    await waitFor(() => platform.broker.retained(`${ctl}/status`), 5000, 'control will retained');
    await waitFor(async () => (await publishDrops()) >= before + 1, 5000, 'will refused');
    expect(platform.broker.retained(`${id}/status`)).toBeUndefined();
  });
});
