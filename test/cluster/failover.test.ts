import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable } from '../helpers/postgres.js';
import { natsAvailable } from '../helpers/nats.js';
import {
  connectCollecting as connect,
  spawnClusterNode,
  startTestCluster,
  type SpawnedNode,
  type TestCluster,
} from '../helpers/cluster.js';
import { waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * A node killed with SIGKILL while it holds persistent sessions with queued QoS 1 messages and a connected
 * client with a will (the node is the `thingstead up` binary, so it can be killed): the owners reconnect to
 * another node at once and receive every queued message; the will of the lost connection is published by
 * the node that adopts what the dead one owned.
 */

const ready =
  (await postgresAvailable('cluster failover test')) && (await natsAvailable('cluster failover test'));

describe.skipIf(!ready)('a node killed with SIGKILL', () => {
  let cluster: TestCluster;
  let y: TestPlatform;
  let x: SpawnedNode;
  let xMqtt: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    cluster = await startTestCluster(1);
    y = cluster.nodes[0]!;
    const c = (cluster.config as { cluster: { natsUrl: string; name: string } }).cluster;
    x = await spawnClusterNode({
      databaseUrl: cluster.schemaUrl,
      clusterName: c.name,
      natsUrl: c.natsUrl,
      dataDir: cluster.dataDir,
      env: { THINGSTEAD_NODE_NAME: 'x' },
    });
    xMqtt = x.mqttUrl;
    await x.printed('Thingstead is up', 30_000);
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.end(true);
    if (x && x.child.exitCode === null) x.child.kill('SIGKILL');
    await cluster?.stop();
  });

  it('its sessions move to the node their owners reconnect to, with every queued message; its wills fire', async () => {
    const session = { clean: false, properties: { sessionExpiryInterval: 600 } };
    // Persistent sessions on x, offline, subscribed to k/{i}/#.
    const owners = ['keeper-1', 'keeper-2', 'keeper-3'];
    for (const id of owners) {
      const k = await connect(xMqtt, id, session);
      await k.subscribeAsync(`k/${id}/#`, { qos: 1 });
      await k.endAsync();
    }
    // A connected client on x with a will; a watcher on y waits for it.
    const watcher = await connect(y.endpoints.mqtt!, 'watcher');
    clients.push(watcher);
    await watcher.subscribeAsync('wills/#', { qos: 1 });
    const doomed = await connect(xMqtt, 'doomed', {
      will: { topic: 'wills/doomed', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    clients.push(doomed);

    // Publishes on y for the offline sessions on x: acknowledged once NATS has them.
    const pub = await connect(y.endpoints.mqtt!, 'pub');
    clients.push(pub);
    const n = 25;
    for (const id of owners)
      for (let i = 0; i < n; i++) await pub.publishAsync(`k/${id}/m`, `${i}`, { qos: 1 });
    // x writes what it queued once per event-loop turn; give it that moment before the kill.
    await new Promise((r) => setTimeout(r, 500));
    x.child.kill('SIGKILL');
    await new Promise((r) => x.child.once('exit', r));

    // The owners come back on y at once (before y has noticed x is dead): each gets all n messages.
    for (const id of owners) {
      const k = await connect(y.endpoints.mqtt!, id, session);
      clients.push(k);
      await waitFor(() => k.got.length >= n, 10_000, `queued messages of ${id}`);
      expect(k.got.map((m) => `${m.topic} ${m.payload}`)).toEqual(
        Array.from({ length: n }, (_, i) => `k/${id}/m ${i}`),
      );
    }
    // The will of the connection x held is published once y adopts what x owned (deadAfterMs 1.5 s).
    const wills = () => watcher.got.filter((m) => m.topic === 'wills/doomed' && m.payload === 'gone');
    await waitFor(() => wills().length > 0, 10_000, 'the will of the lost connection');
    expect(wills().length).toBe(1);
  }, 60_000);
});
