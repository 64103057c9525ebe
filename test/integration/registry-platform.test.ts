import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  CreateThingCommand,
  IoTClient,
  SearchIndexCommand,
  UpdateEventConfigurationsCommand,
  UpdateThingCommand,
} from '@aws-sdk/client-iot';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The registry through the whole platform: admin credentials written on first start (mode 0600), the API on
 * the platform's HTTP port, connectivity.connected from the real broker (an MQTT.js client whose client id
 * is the thing name), and registry events delivered to an MQTT subscriber on $aws/events/... [reference §8.6].
 */

let p: TestPlatform;
let iot: IoTClient;
beforeAll(async () => {
  p = await startTestPlatform();
  const file = p.endpoints.credentialsFile!;
  const profile = parseCredentialsFile(readFileSync(file, 'utf8')).default!;
  iot = new IoTClient({
    endpoint: p.endpoints.http,
    region: profile.region ?? 'us-east-1',
    maxAttempts: 1,
    credentials: { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! },
  });
});
afterAll(async () => {
  iot?.destroy();
  await p?.stop();
});

test('first start writes <data dir>/credentials (0600) and master.key (0600); endpoints.json names it', () => {
  const file = join(p.endpoints.dataDir, 'credentials');
  expect(p.endpoints.credentialsFile).toBe(file);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(statSync(join(p.endpoints.dataDir, 'master.key')).mode & 0o777).toBe(0o600);
  const text = readFileSync(file, 'utf8');
  expect(text).toMatch(
    /^\[default\]\naws_access_key_id = AKIA[A-Z2-7]{16}\naws_secret_access_key = \S{40}\nregion = us-east-1\n$/,
  );
  const endpoints = JSON.parse(readFileSync(join(p.endpoints.dataDir, 'endpoints.json'), 'utf8'));
  expect(endpoints.credentialsFile).toBe(file);
  // The secret is not stored in clear in the database file.
  const secret = parseCredentialsFile(text).default!.aws_secret_access_key!;
  const dbText = ['thingstead.db', 'thingstead.db-wal']
    .map((f) => join(p.endpoints.dataDir, f))
    .filter(existsSync)
    .map((f) => readFileSync(f).toString('latin1'))
    .join('');
  expect(dbText.includes(secret)).toBe(false);
});

test('connectivity.connected follows a real MQTT connection; registry events reach an MQTT subscriber', async () => {
  await iot.send(
    new CreateThingCommand({ thingName: 'dev-1', attributePayload: { attributes: { fw: '1' } } }),
  );
  const connected = async () =>
    (await iot.send(new SearchIndexCommand({ queryString: 'connectivity.connected:true' }))).things?.map(
      (t) => t.thingName,
    ) ?? [];
  expect(await connected()).toEqual([]);

  const device = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'dev-1', reconnectPeriod: 0 });
  expect(await connected()).toEqual(['dev-1']);

  await iot.send(new UpdateEventConfigurationsCommand({ eventConfigurations: { THING: { Enabled: true } } }));
  const watcher = await mqtt.connectAsync(p.endpoints.mqtt!, { clientId: 'watcher', reconnectPeriod: 0 });
  const events: Array<{ topic: string; body: any }> = [];
  watcher.on('message', (topic, payload) => events.push({ topic, body: JSON.parse(payload.toString()) }));
  await watcher.subscribeAsync('$aws/events/thing/#', { qos: 0 });
  await iot.send(
    new UpdateThingCommand({
      thingName: 'dev-1',
      attributePayload: { attributes: { fw: '2' }, merge: true },
    }),
  );
  const ev = await waitFor(
    () => events.find((e) => e.topic === '$aws/events/thing/dev-1/updated'),
    5000,
    'THING updated event',
  );
  expect(ev.body).toMatchObject({
    eventType: 'THING_EVENT',
    operation: 'UPDATED',
    thingName: 'dev-1',
    versionNumber: 2,
    attributes: { fw: '2' },
  });

  await device.endAsync();
  await waitFor(async () => (await connected()).length === 0, 5000, 'dev-1 to show as disconnected');
  await watcher.endAsync();
});
