import mqtt, { type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signedFetch } from '../../src/api/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';
import { adminKey, ensureConsoleBuilt, launch, screenshot, signIn } from './browser.js';

/**
 * The console end to end: headless Chromium (Debian's chromium, playwright-core) against a whole platform
 * in-process, with MQTT.js devices. Sign in, search a thing, watch a chart move as a device publishes, edit
 * a desired state and see the device get the delta, start a job and watch it finish, and a read-only key
 * refused a change (the UI shows the API's error and nothing changes). Screenshots of the main pages.
 */
let platform: TestPlatform;
let browser: Browser;
let admin: { id: string; secret: string };
let page: Page;
const devices: MqttClient[] = [];

const api = (method: string, path: string, body?: unknown) =>
  signedFetch(
    {
      endpoint: platform.endpoints.http,
      accessKeyId: admin.id,
      secretAccessKey: admin.secret,
      region: 'us-east-1',
    },
    method,
    path,
    body === undefined ? {} : { body },
  );

async function device(clientId: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(platform.endpoints.mqtt!, {
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  devices.push(c);
  return c;
}

beforeAll(async () => {
  await ensureConsoleBuilt();
  platform = await startTestPlatform();
  admin = adminKey(platform);
  await api('POST', '/thing-groups/kitchen', {});
  for (let i = 0; i < 120; i++) {
    const name = `sensor-${String(i).padStart(3, '0')}`;
    await api('POST', `/things/${name}`, {
      attributePayload: { attributes: { room: i % 2 ? 'kitchen' : 'hall' } },
    });
  }
  await api('PUT', '/thing-groups/addThingToThingGroup', {
    thingGroupName: 'kitchen',
    thingName: 'sensor-001',
  });
  await api('POST', '/rules/telemetry', {
    sql: "SELECT temperature FROM 'things/+/telemetry'",
    actions: [{ timeseries: { thingName: '${topic(2)}' } }],
  });
  browser = await launch();
  page = await signIn(browser, platform, admin);
}, 120_000);

afterAll(async () => {
  for (const d of devices) await d.endAsync().catch(() => undefined);
  await browser?.close();
  await platform?.stop();
});

describe('console end to end (headless Chromium)', () => {
  test('signs in with the admin key and shows the live fleet overview', async () => {
    await page.waitForSelector('[data-testid=stat-things]');
    await waitFor(
      async () => (await page.textContent('[data-testid=stat-things]'))?.includes('120'),
      10_000,
      'fleet count 120',
    );
    const d = await device('sensor-005');
    await waitFor(
      async () => (await page.textContent('[data-testid=stat-connected]'))?.startsWith('1'),
      15_000,
      'one connected',
    );
    await d.endAsync();
    devices.splice(devices.indexOf(d), 1);
    await page.waitForSelector('text=CLIENT_INITIATED_DISCONNECT', { timeout: 10_000 });
    await screenshot(page, 'overview');
  });

  test('searches the fleet with the query syntax and pages on the server', async () => {
    await page.click('[data-nav=things]');
    await page.waitForSelector('[data-testid=things-table]');
    expect(await page.textContent('[data-testid=things-range]')).toContain('1–50 of 120');
    await page.click('[data-testid=next-page]');
    await waitFor(
      async () => (await page.textContent('[data-testid=things-range]'))?.includes('51–100'),
      5000,
      'page 2',
    );
    await page.fill('[data-testid=thing-search]', 'thingName:sensor-00* AND attributes.room:kitchen');
    await page.press('[data-testid=thing-search]', 'Enter');
    await waitFor(
      async () => (await page.textContent('[data-testid=things-range]'))?.includes('of 5'),
      5000,
      '5 matches',
    );
    const names = await page.$$eval('[data-testid=things-table] tbody tr td:first-child', (tds) =>
      tds.map((t) => t.textContent),
    );
    expect(names).toEqual(['sensor-001', 'sensor-003', 'sensor-005', 'sensor-007', 'sensor-009']);
    await screenshot(page, 'things');
    // A query the index cannot parse comes back as the API's own error.
    await page.fill('[data-testid=thing-search]', 'thingName:(');
    await page.press('[data-testid=thing-search]', 'Enter');
    await page.waitForSelector('[data-testid=error] >> text=InvalidQueryException');
  });

  test('a chart moves when a device publishes', async () => {
    const d = await device('sensor-010');
    d.publish('things/sensor-010/telemetry', JSON.stringify({ temperature: 20 }));
    await waitFor(
      async () => (await platform.timeseries.listSeries('sensor-010')).length > 0,
      10_000,
      'first point stored',
    );
    await page.goto(`${platform.endpoints.http}/#/telemetry?thing=sensor-010&metric=temperature`);
    const chart = '[data-testid=explorer-chart]';
    await page.waitForSelector(`${chart}[data-points="1"]`, { timeout: 10_000, state: 'attached' });
    for (let i = 1; i <= 3; i++) {
      d.publish('things/sensor-010/telemetry', JSON.stringify({ temperature: 20 + i }));
      await page.waitForSelector(`${chart}[data-points="${1 + i}"]`, { timeout: 10_000, state: 'attached' });
    }
    await screenshot(page, 'telemetry');
  });

  test('editing the desired state shows the delta, and the device receives it', async () => {
    const d = await device('sensor-020');
    await d.subscribeAsync('$aws/things/sensor-020/shadow/update/delta', { qos: 1 });
    const deltas: any[] = [];
    d.on(
      'message',
      (topic, payload) => topic.endsWith('/delta') && deltas.push(JSON.parse(payload.toString())),
    );
    await d.publishAsync(
      '$aws/things/sensor-020/shadow/update',
      JSON.stringify({ state: { reported: { led: 'off', fan: 1 } } }),
      { qos: 1 },
    );
    await page.goto(`${platform.endpoints.http}/#/things/sensor-020`);
    await page.waitForSelector('text=version 1', { timeout: 10_000 });
    await page.fill('[data-testid=desired-editor]', JSON.stringify({ led: 'on', fan: 1 }));
    // The preview: fan equals reported, so only led is in the delta.
    await waitFor(
      async () => (await page.textContent('.grid3 > div:nth-child(3) .json'))?.includes('"led": "on"'),
      5000,
      'delta preview',
    );
    expect(await page.textContent('.grid3 > div:nth-child(3) .json')).not.toContain('fan');
    await page.click('[data-testid=desired-submit]');
    await waitFor(() => deltas.length > 0, 10_000, 'the device gets the delta');
    expect(deltas[0].state).toEqual({ led: 'on' });
    await page.waitForSelector('text=Accepted as version 2');
    await screenshot(page, 'thing');
  });

  test('starts a job and watches its progress while the device runs it', async () => {
    const d = await device('sensor-030');
    await d.subscribeAsync('$aws/things/sensor-030/jobs/notify-next', { qos: 1 });
    d.on('message', (topic, payload) => {
      if (!topic.endsWith('notify-next')) return;
      const exec = JSON.parse(payload.toString()).execution;
      if (exec?.jobId)
        d.publish(
          `$aws/things/sensor-030/jobs/${exec.jobId}/update`,
          JSON.stringify({ status: 'SUCCEEDED' }),
          { qos: 1 },
        );
    });
    await page.goto(`${platform.endpoints.http}/#/jobs`);
    await page.fill('[data-testid=create-job] input[name=jobId]', 'console-reboot');
    await page.fill('[data-testid=create-job] input[name=targets]', 'sensor-030');
    await page.click('[data-testid=create-job] button[type=submit]');
    await page.waitForURL(/#\/jobs\/console-reboot$/);
    await waitFor(
      async () => (await page.textContent('[data-testid=job-Succeeded] .stat-value')) === '1',
      20_000,
      'job succeeded',
    );
    await page.waitForSelector('[data-testid=executions] >> text=SUCCEEDED');
    await screenshot(page, 'job');
  });

  test('the topic viewer subscribes with the signed-in key and shows messages', async () => {
    await page.goto(`${platform.endpoints.http}/#/topics`);
    await page.waitForSelector('[data-testid=mqtt-state] >> text=connected', { timeout: 10_000 });
    await page.fill('[data-testid=topic-filter]', 'things/+/status');
    await page.click('form.searchbar button[type=submit]');
    await page.waitForSelector('.badge >> text=things/+/status');
    const d = await device('sensor-040');
    await d.publishAsync('things/sensor-040/status', '{"ok":true}', { qos: 1 });
    await page.waitForSelector('[data-testid=messages] >> text=things/sensor-040/status', {
      timeout: 10_000,
    });
    await screenshot(page, 'topics');
  });

  test('a read-only key sees everything and is refused a change, with the API error shown', async () => {
    const viewer = await platform.credentials.create('console-viewer', 'read-only');
    const ro = await signIn(browser, platform, { id: viewer.accessKeyId, secret: viewer.secretAccessKey });
    await ro.waitForSelector('text=Signed in with a read-only key');
    await ro.goto(`${platform.endpoints.http}/#/things/sensor-020`);
    await ro.waitForSelector('text=version 2', { timeout: 10_000 });
    await ro.fill('[data-testid=desired-editor]', JSON.stringify({ led: 'blink' }));
    await ro.click('[data-testid=desired-submit]');
    await ro.waitForSelector('[data-testid=error] >> text=AccessDeniedException');
    expect(await ro.textContent('[data-testid=error]')).toContain(
      `User: ${viewer.accessKeyId} is not authorized`,
    );
    const shadow = await platform.shadows.service.get('sensor-020', '');
    expect(JSON.stringify(shadow)).not.toContain('blink');
    // A job cannot be started either.
    await ro.goto(`${platform.endpoints.http}/#/jobs`);
    await ro.fill('[data-testid=create-job] input[name=jobId]', 'ro-job');
    await ro.fill('[data-testid=create-job] input[name=targets]', 'sensor-030');
    await ro.click('[data-testid=create-job] button[type=submit]');
    await ro.waitForSelector('[data-testid=error] >> text=AccessDeniedException');
    await expect(api('GET', '/jobs/ro-job')).rejects.toMatchObject({ status: 404 });
    await screenshot(ro, 'read-only');
    await ro.close();
  });
});
