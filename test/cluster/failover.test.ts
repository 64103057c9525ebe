import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable } from '../helpers/postgres.js';
import { natsAvailable } from '../helpers/nats.js';
import {
  connectCollecting as connect,
  freePort,
  startTestCluster,
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
  let x: ChildProcess;
  let xMqtt: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    cluster = await startTestCluster(1);
    y = cluster.nodes[0]!;
    const mqttPort = await freePort();
    const httpPort = await freePort();
    xMqtt = `mqtt://127.0.0.1:${mqttPort}`;
    const c = (cluster.config as { cluster: Record<string, unknown> }).cluster;
    x = spawn(
      process.execPath,
      [join(process.cwd(), 'dist', 'cli', 'main.js'), 'up', '--data-dir', cluster.dataDir],
      {
        env: {
          ...process.env,
          THINGSTEAD_DATABASE_URL: cluster.schemaUrl,
          THINGSTEAD_NATS_URL: String(c.natsUrl),
          THINGSTEAD_CLUSTER_NAME: String(c.name),
          THINGSTEAD_NODE_NAME: 'x',
          THINGSTEAD_ALLOW_ANONYMOUS: '1',
          THINGSTEAD_MQTT_PORT: String(mqttPort),
          THINGSTEAD_HTTP_PORT: String(httpPort),
          THINGSTEAD_MQTT_TLS_PORT: 'off',
          THINGSTEAD_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    x.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(
      () => {
        if (x.exitCode !== null) throw new Error(`node x exited: ${err.slice(-800)}`);
        return err.includes('Thingstead is up');
      },
      30_000,
      'node x up',
    );
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.end(true);
    if (x.exitCode === null) x.kill('SIGKILL');
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
    x.kill('SIGKILL');
    await new Promise((r) => x.once('exit', r));

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
