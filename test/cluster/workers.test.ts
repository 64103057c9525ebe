import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresAvailable } from '../helpers/postgres.js';
import { natsAvailable } from '../helpers/nats.js';
import { connectCollecting, spawnClusterNode, type CollectingClient } from '../helpers/cluster.js';
import { waitFor } from '../helpers/platform.js';

/**
 * `thingstead up --workers 2` (the binary): two broker processes on one port, one banner, a message crosses
 * from a client on one worker to a client on the other, GET /cluster lists both, SIGTERM stops both.
 */

const ready = (await postgresAvailable('--workers test')) && (await natsAvailable('--workers test'));

describe.skipIf(!ready)('thingstead up --workers 2', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingstead-workers-'));
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await drop?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('shares the port between two cluster nodes and stops both on SIGTERM', async () => {
    const schema = await freshSchema('wk');
    drop = () => schema.drop();
    const node = await spawnClusterNode({
      databaseUrl: schema.url,
      clusterName: schema.schema,
      dataDir,
      args: ['--workers', '2'],
    });
    const child = node.child;
    try {
      await node.printed('Workers           2 processes', 45_000);
      expect(node.stderr().match(/Thingstead is up/g)?.length).toBe(1);
      const view = (await (await fetch(`${node.httpUrl}/cluster`)).json()) as {
        nodes: unknown[];
      };
      expect(view.nodes.length).toBe(2);

      // Connections are handed to the workers in turn: of a subscriber and several publishers, some land on
      // the other worker, and every message arrives once.
      const url = node.mqttUrl;
      const sub = await connectCollecting(url, 'w-sub');
      await sub.subscribeAsync('w/#', { qos: 1 });
      const pubs: CollectingClient[] = [];
      for (let i = 0; i < 4; i++) pubs.push(await connectCollecting(url, `w-pub-${i}`));
      await waitFor(
        async () => {
          for (const [i, p] of pubs.entries()) await p.publishAsync(`w/probe/${i}`, 'probe', { qos: 1 });
          return new Set(sub.got.map((m) => m.topic)).size === pubs.length;
        },
        10_000,
        'probes from every publisher',
      );
      sub.got.length = 0;
      for (const [i, p] of pubs.entries())
        for (let k = 0; k < 10; k++) await p.publishAsync(`w/${i}`, `${k}`, { qos: 1 });
      await waitFor(() => sub.got.length >= 40, 5000, 'all 40');
      await new Promise((r) => setTimeout(r, 200));
      expect(sub.got.length).toBe(40);
      const pids = readFileSync(join(dataDir, 'thingstead.lock'), 'utf8');
      expect(pids).toContain(String(child.pid));
      for (const c of [sub, ...pubs]) c.end(true);
    } finally {
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) =>
        child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c)),
      );
      expect(code).toBe(0);
    }
  }, 90_000);
});
