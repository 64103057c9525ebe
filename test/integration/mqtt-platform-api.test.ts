/** The broker's platform-facing API: internal publish/subscribe, client listing, connectivity. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { collect, connect, end, uniqueId } from '../conformance/helpers.js';
import type { Message, Publisher } from '../../src/mqtt/index.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

describe('Broker platform API', () => {
  it('subscribeInternal sees client publishes with the publisher; unsubscribe stops it', async () => {
    const seen: Array<[Message, Publisher | null]> = [];
    const off = platform.broker.subscribeInternal('svc/+/in', (m, p) => seen.push([m, p]));
    const clientId = uniqueId('dev');
    const c = await connect(platform, { clientId });
    await c.publishAsync('svc/1/in', 'hello', { qos: 1, properties: { userProperties: { a: 'b' } } });
    await waitFor(() => seen.length === 1);
    expect(seen[0]![0].payload.toString()).toBe('hello');
    expect(seen[0]![0].properties?.userProperties).toEqual({ a: 'b' });
    expect(seen[0]![1]?.clientId).toBe(clientId);
    off();
    await c.publishAsync('svc/1/in', 'again', { qos: 1 });
    expect(seen).toHaveLength(1);
    await end(c);
  });

  it('publish() from the platform reaches clients (reserved $aws topics by explicit filter)', async () => {
    const c = await connect(platform, { protocolVersion: 4 });
    const got = collect(c);
    const topic = `$aws/things/${uniqueId()}/shadow/update/accepted`;
    await c.subscribeAsync(topic, { qos: 1 });
    platform.broker.publish({ topic, payload: Buffer.from('{}'), qos: 1, retain: false });
    await waitFor(() => got.length === 1);
    expect(got[0]!.packet.qos).toBe(1);
    expect(() =>
      platform.broker.publish({ topic: 'bad/#', payload: Buffer.alloc(0), qos: 0, retain: false }),
    ).toThrow();
    await end(c);
  });

  it('isConnected() and clients() reflect live connections', async () => {
    const clientId = uniqueId('live');
    const c = await connect(platform, { clientId, transport: 'ws' });
    await c.subscribeAsync(['x/1', 'x/2']);
    expect(platform.broker.isConnected(clientId)).toBe(true);
    const summary = platform.broker.clients().find((s) => s.clientId === clientId);
    expect(summary).toMatchObject({
      protocolVersion: 5,
      transport: 'ws',
      subscriptions: 2,
      principal: { kind: 'anonymous' },
    });
    await c.endAsync();
    await waitFor(() => !platform.broker.isConnected(clientId));
  });
});
