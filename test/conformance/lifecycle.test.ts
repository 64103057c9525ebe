/** AWS IoT lifecycle events (reference §8.5) published through normal routing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, collect, connect, end, uniqueId, waitFor, type Received } from './helpers.js';

let platform: TestPlatform;
let events: Received[];
beforeAll(async () => {
  platform = await startTestPlatform({ limits: { keepAliveMin: 1 } });
});
afterAll(async () => {
  await platform?.stop();
});

async function watch() {
  const w = await connect(platform);
  events = collect(w);
  await w.subscribeAsync(['$aws/events/presence/+/+', '$aws/events/subscriptions/+/+']);
  return w;
}
const bodies = (clientId: string, kind: string) =>
  events
    .filter((e) => e.topic.endsWith(`/${clientId}`) && e.topic.includes(kind))
    .map((e) => JSON.parse(e.payload));

describe('lifecycle events', () => {
  it('connected / subscribed / unsubscribed / disconnected (CLIENT_INITIATED_DISCONNECT) with the AWS fields', async () => {
    const w = await watch();
    const clientId = uniqueId('life');
    const c = await connect(platform, { clientId });
    await c.subscribeAsync(['a/b', 'c/+']);
    await c.unsubscribeAsync('a/b');
    await c.endAsync();
    await waitFor(() => bodies(clientId, '/disconnected/').length === 1);
    const [conn] = bodies(clientId, '/connected/');
    expect(conn).toMatchObject({
      clientId,
      eventType: 'connected',
      principalIdentifier: 'anonymous',
      ipAddress: '127.0.0.1',
    });
    expect(typeof conn.timestamp).toBe('number');
    expect(conn.timestamp).toBeGreaterThan(1e12); // epoch ms
    expect(conn.sessionIdentifier).toMatch(/^[0-9a-f-]{36}$/);
    const [sub] = bodies(clientId, '/subscribed/');
    expect(sub).toMatchObject({
      eventType: 'subscribed',
      topics: ['a/b', 'c/+'],
      sessionIdentifier: conn.sessionIdentifier,
    });
    const [unsub] = bodies(clientId, '/unsubscribed/');
    expect(unsub).toMatchObject({ eventType: 'unsubscribed', topics: ['a/b'] });
    const [disc] = bodies(clientId, '/disconnected/');
    expect(disc).toMatchObject({
      clientId,
      eventType: 'disconnected',
      clientInitiatedDisconnect: true,
      disconnectReason: 'CLIENT_INITIATED_DISCONNECT',
      versionNumber: conn.versionNumber,
      sessionIdentifier: conn.sessionIdentifier,
    });
    expect(disc.ipAddress).toBeUndefined();
    await end(w);
  });

  it('DUPLICATE_CLIENTID, CONNECTION_LOST and MQTT_KEEP_ALIVE_TIMEOUT; versionNumber rises per client id', async () => {
    const w = await watch();
    const clientId = uniqueId('life');
    const first = await connect(platform, { clientId });
    const second = await connect(platform, { clientId });
    await waitFor(() => bodies(clientId, '/disconnected/').length === 1);
    expect(bodies(clientId, '/disconnected/')[0].disconnectReason).toBe('DUPLICATE_CLIENTID');
    second.stream.destroy();
    await waitFor(() => bodies(clientId, '/disconnected/').length === 2);
    expect(bodies(clientId, '/disconnected/')[1].disconnectReason).toBe('CONNECTION_LOST');
    const versions = bodies(clientId, '/connected/').map((b) => b.versionNumber);
    expect(versions[1]).toBeGreaterThan(versions[0]);

    const raw = await RawClient.open(platform, 4);
    raw.send({ cmd: 'connect', protocolVersion: 4, clientId, clean: true, keepalive: 1 });
    await raw.next('connack');
    await waitFor(() => bodies(clientId, '/disconnected/').length === 3, 4000);
    expect(bodies(clientId, '/disconnected/')[2].disconnectReason).toBe('MQTT_KEEP_ALIVE_TIMEOUT');
    await end(w, first);
  });

  it('clients cannot publish on $aws/events/ (no spoofed presence): v5 PUBACK 0x87', async () => {
    const c = await connect(platform);
    await expect(
      c.publishAsync('$aws/events/presence/connected/someone', '{}', { qos: 1 }),
    ).rejects.toThrow();
    await end(c);
  });

  it('client ids containing # or + get no lifecycle events', async () => {
    const w = await watch();
    const plain = uniqueId('ok');
    const c1 = await connect(platform, { clientId: `${plain}#x` });
    const c2 = await connect(platform, { clientId: plain });
    await waitFor(() => bodies(plain, '/connected/').length === 1);
    expect(events.filter((e) => e.topic.includes('#x'))).toEqual([]);
    await end(w, c1, c2);
  });
});
