import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import mqtt from 'mqtt';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * broker.deliverTo (reference §8.1): a reply for one client reaches that client's session only, whether or
 * not it subscribed, and never passes through routing (other subscribers, internal subscribers, retained).
 */
let p: TestPlatform;
beforeAll(async () => {
  p = await startTestPlatform();
});
afterAll(() => p?.stop());

const connect = (clientId: string, extra: mqtt.IClientOptions = {}) =>
  mqtt.connectAsync(`mqtt://127.0.0.1:${p.endpoints.mqttPort}`, {
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
    ...extra,
  });

describe('broker.deliverTo', () => {
  test('reaches the one client without a subscription; nobody else sees it', async () => {
    const target = await connect('dt-target');
    const other = await connect('dt-other');
    const gotTarget: string[] = [];
    const gotOther: string[] = [];
    target.on('message', (t, m) => gotTarget.push(`${t} ${m}`));
    other.on('message', (t, m) => gotOther.push(`${t} ${m}`));
    await other.subscribeAsync('$aws/things/x/jobs/#', { qos: 1 });
    await target.subscribeAsync('$aws/things/x/jobs/get/accepted', { qos: 1 });
    const internal: string[] = [];
    const off = p.broker.subscribeInternal('$aws/things/x/jobs/#', (m) => internal.push(m.topic));
    const delivered = p.broker.deliverTo('dt-target', {
      topic: '$aws/things/x/jobs/get/accepted',
      payload: Buffer.from('one'),
      qos: 1,
      retain: false,
    });
    expect(delivered).toBe(true);
    await waitFor(() => gotTarget.length === 1);
    // Subscribed to the same topic: still exactly one copy.
    p.broker.deliverTo('dt-target', {
      topic: '$aws/things/x/jobs/other',
      payload: Buffer.from('two'),
      qos: 0,
      retain: false,
    });
    await waitFor(() => gotTarget.length === 2);
    expect(gotTarget).toEqual(['$aws/things/x/jobs/get/accepted one', '$aws/things/x/jobs/other two']);
    // A routed publish on the same topics reaches `other`, proving its subscription works.
    p.broker.publish({ topic: '$aws/things/x/jobs/probe', payload: Buffer.from('p'), qos: 0, retain: false });
    await waitFor(() => gotOther.length === 1);
    expect(gotOther).toEqual(['$aws/things/x/jobs/probe p']);
    expect(internal).toEqual(['$aws/things/x/jobs/probe']);
    expect(p.broker.retained('$aws/things/x/jobs/get/accepted')).toBeUndefined();
    off();
    await target.endAsync();
    await other.endAsync();
  });

  test('false for an unknown client; QoS 1 to an offline persistent session is queued until it resumes', async () => {
    expect(
      p.broker.deliverTo('nobody', { topic: 'a/b', payload: Buffer.from('x'), qos: 1, retain: false }),
    ).toBe(false);
    const c = await connect('dt-persist', { clean: false, properties: { sessionExpiryInterval: 300 } });
    await c.endAsync();
    await waitFor(() => !p.broker.isConnected('dt-persist'));
    expect(
      p.broker.deliverTo('dt-persist', {
        topic: 'r/1',
        payload: Buffer.from('later'),
        qos: 1,
        retain: false,
      }),
    ).toBe(true);
    const got: string[] = [];
    const again = mqtt.connect(`mqtt://127.0.0.1:${p.endpoints.mqttPort}`, {
      clientId: 'dt-persist',
      protocolVersion: 5,
      clean: false,
      reconnectPeriod: 0,
      properties: { sessionExpiryInterval: 300 },
    });
    again.on('message', (t, m) => got.push(`${t} ${m}`));
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['r/1 later']);
    await again.endAsync();
  });

  test('refuses an invalid topic name', () => {
    expect(() =>
      p.broker.deliverTo('x', { topic: 'a/+', payload: Buffer.alloc(0), qos: 0, retain: false }),
    ).toThrow();
  });
});
