/**
 * Console benchmark (issue 13). Run: `npm run build && npx tsx bench/console.ts [--things 100000]
 * [--loads 15] [--viewers 100] [--pages 3] [--rate 10] [--seconds 30]`. Writes bench/results/console.json.
 *
 * Thingstead runs as its own process (`node dist/cli/main.js up`, SQLite in a temporary data directory,
 * plain MQTT on a free loopback port, anonymous loopback devices, log level warn); the browser is Debian's
 * Chromium (headless, playwright-core), the devices and SSE viewers are in this process.
 *
 * (a) fleet list: `--things` things (seeded through the registry before start), then `--loads`
 *     full page loads of `/#/things` in a signed-in tab: time from navigation start to the first page of
 *     50 rows in the DOM (the things page marks `data-things-rendered` in the frame its rows are committed).
 *     Also the time of each "Next" page (SearchIndex with nextToken) and of the count endpoint.
 * (b) publish to chart: `--viewers` Server-Sent Events clients in this process subscribe to one thing's
 *     metric as the telemetry chart does, plus `--pages` Chromium tabs on the telemetry explorer with live
 *     tail; one MQTT.js device publishes `{"v": n, "ts": <now>}` at `--rate` per second for `--seconds`
 *     to a topic a rule stores with the timeseries action (timestamp = the device's ts). Latency = the
 *     chart's draw time (uPlot setData, the page's `console:chart` event) minus the publish time, one
 *     clock (same machine); for the SSE clients, arrival minus publish time.
 *
 * There is no peer console to run beside it: Grafana Live documents "several hundred milliseconds" from
 * publish to panel; the targets are the (300 ms first render at 100,000 things; p99 250 ms with
 * 100 viewers).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { chromium } from 'playwright-core';
import { signedFetch } from '../src/api/index.js';
import { createRegistry } from '../src/registry/index.js';
import { openDatabase } from '../src/store/index.js';
import { arg, machine as machineInfo, median, percentile, sleep } from './lib/common.js';

const THINGS = Number(arg('things', '100000'));
const LOADS = Number(arg('loads', '15'));
const VIEWERS = Number(arg('viewers', '100'));
const PAGES = Number(arg('pages', '3'));
const RATE = Number(arg('rate', '10'));
const SECONDS = Number(arg('seconds', '30'));
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const OUT = fileURLToPath(new URL('./results/console.json', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let seedSeconds = 0;

/**
 * Seed the registry before the platform starts: the registry's own createThing, in this process on the
 * same SQLite file (the API at 32 in flight makes ~150 things/s on a loaded 2-core machine; this ~5,000/s).
 */
async function seedThings(dataDir: string, n: number): Promise<number> {
  const started = Date.now();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = await openDatabase({ dataDir, databaseUrl: null });
  const registry = await createRegistry({ db, region: 'us-east-1', accountId: '000000000000' });
  for (let i = 0; i < n; i++)
    await registry.createThing({
      thingName: `thing-${String(i).padStart(6, '0')}`,
      attributePayload: { attributes: { room: `r${i % 40}`, floor: String(i % 7) } },
    });
  await registry.close();
  await db.close();
  return (Date.now() - started) / 1000;
}

async function startPlatform() {
  if (!existsSync(CLI) || !existsSync(join(CLI, '..', '..', 'console', 'web', 'index.html')))
    throw new Error('dist/ or dist/console/web is missing: run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'bench-console-'));
  console.log(`seeding ${THINGS} things...`);
  seedSeconds = await seedThings(join(dir, 'data'), THINGS);
  console.log(`  ${seedSeconds.toFixed(1)} s`);
  const child = spawn(process.execPath, [CLI, 'up'], {
    env: {
      ...process.env,
      THINGSTEAD_DATA_DIR: join(dir, 'data'),
      THINGSTEAD_MQTT_PORT: '0',
      THINGSTEAD_HTTP_PORT: '0',
      THINGSTEAD_MQTT_TLS_PORT: 'off',
      THINGSTEAD_ALLOW_ANONYMOUS: 'true',
      THINGSTEAD_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const file = join(dir, 'data', 'endpoints.json');
  for (let i = 0; i < 600 && !existsSync(file); i++) await sleep(100);
  const endpoints = JSON.parse(readFileSync(file, 'utf8')) as {
    http: string;
    mqtt: string;
    credentialsFile: string;
  };
  const creds = readFileSync(endpoints.credentialsFile, 'utf8');
  const key = {
    accessKeyId: /aws_access_key_id = (\S+)/.exec(creds)![1]!,
    secretAccessKey: /aws_secret_access_key = (\S+)/.exec(creds)![1]!,
  };
  return {
    endpoints,
    key,
    api: (method: string, path: string, body?: unknown) =>
      signedFetch(
        { endpoint: endpoints.http, region: 'us-east-1', ...key },
        method,
        path,
        body === undefined ? {} : { body },
      ),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type P = Awaited<ReturnType<typeof startPlatform>>;

async function signInCookie(p: P) {
  const res = await fetch(`${p.endpoints.http}/console/api/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(p.key),
  });
  // The session cookie (HttpOnly) and the CSRF token's readable copy, as the browser gets them.
  const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]!);
  const value = (name: string) => cookies.find((c) => c.startsWith(`${name}=`))!.slice(name.length + 1);
  return {
    cookie: cookies.find((c) => c.startsWith('thingstead_session='))!,
    session: value('thingstead_session'),
    csrf: value('thingstead_csrf'),
  };
}

async function main() {
  const machine = machineInfo();
  const p = await startPlatform();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const session = await signInCookie(p);
    const host = new URL(p.endpoints.http);
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    await context.addCookies(
      (['thingstead_session', 'thingstead_csrf'] as const).map((name) => ({
        name,
        value: name === 'thingstead_session' ? session.session : session.csrf,
        domain: host.hostname,
        path: '/',
        httpOnly: name === 'thingstead_session',
        sameSite: 'Strict' as const,
      })),
    );

    // (a) fleet list first render
    const page = await context.newPage();
    const firstRender: number[] = [];
    for (let i = 0; i < LOADS + 2; i++) {
      await page.goto(`${p.endpoints.http}/#/things`, { waitUntil: 'commit' });
      await page.waitForSelector('body[data-things-rendered]', { timeout: 30_000 });
      const ms = Number(await page.evaluate(() => (globalThis as any).document.body.dataset.thingsRendered));
      if (i >= 2) firstRender.push(ms); // two warm-up loads (browser cache, server JIT)
      await page.goto('about:blank');
    }
    await page.goto(`${p.endpoints.http}/#/things`);
    await page.waitForSelector('body[data-things-rendered]');
    const nextPage: number[] = [];
    for (let i = 0; i < 20; i++) {
      const before = await page.evaluate(() => (globalThis as any).document.body.dataset.thingsRendered);
      const t0 = await page.evaluate(() => performance.now());
      await page.click('[data-testid=next-page]');
      await page.waitForFunction(
        (b) => (globalThis as any).document.body.dataset.thingsRendered !== b,
        before,
      );
      nextPage.push(
        Number(await page.evaluate(() => (globalThis as any).document.body.dataset.thingsRendered)) - t0,
      );
    }
    const countMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = (await (
        await fetch(`${p.endpoints.http}/console/api/things/count?q=attributes.room:r7`, {
          headers: { cookie: session.cookie },
        })
      ).json()) as { ms: number };
      countMs.push(r.ms);
    }
    console.log(
      `fleet list first render: median ${median(firstRender).toFixed(0)} ms, p95 ${percentile(firstRender, 95).toFixed(0)} ms`,
    );
    await page.close();

    // (b) publish -> chart with viewers
    await p.api('POST', '/rules/bench_chart', {
      sql: "SELECT v, ts FROM 'bench/+/t'",
      actions: [{ timeseries: { thingName: '${topic(2)}', timestamp: '${ts}', metrics: ['v'] } }],
    });
    const thing = 'chart-1';
    const device = await mqtt.connectAsync(p.endpoints.mqtt, {
      clientId: 'bench-device',
      protocolVersion: 5,
    });
    device.publish(`bench/${thing}/t`, JSON.stringify({ v: 0, ts: Date.now() }));
    await sleep(500);
    const sseLatency: number[] = [];
    const controllers: AbortController[] = [];
    const series = encodeURIComponent(JSON.stringify([[thing, 'v']]));
    let sseConnected = 0;
    await Promise.all(
      Array.from({ length: VIEWERS }, async () => {
        const ctrl = new AbortController();
        controllers.push(ctrl);
        const res = await fetch(`${p.endpoints.http}/console/api/live?series=${series}`, {
          headers: { cookie: session.cookie },
          signal: ctrl.signal,
        });
        sseConnected++;
        const reader = res.body!.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        void (async () => {
          for (;;) {
            const { value, done } = await reader
              .read()
              .catch(() => ({ value: undefined, done: true as const }));
            if (done) return;
            buf += decoder.decode(value, { stream: true });
            let end: number;
            while ((end = buf.indexOf('\n\n')) >= 0) {
              const frame = buf.slice(0, end);
              buf = buf.slice(end + 2);
              if (!frame.startsWith('event: points')) continue;
              const now = Date.now();
              const data = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as {
                points: Array<[number, number]>;
              };
              for (const [ts] of data.points) sseLatency.push(now - ts);
            }
          }
        })();
      }),
    );
    const pages = [];
    for (let i = 0; i < PAGES; i++) {
      const tab = await context.newPage();
      await tab.goto(`${p.endpoints.http}/#/telemetry?thing=${thing}&metric=v`);
      await tab.waitForSelector('[data-testid=explorer-chart][data-points]', {
        state: 'attached',
        timeout: 20_000,
      });
      await tab.evaluate(() => {
        (globalThis as any).__latency = [];
        (globalThis as any).document.addEventListener('console:chart', (e: any) => {
          const d = (e as CustomEvent<{ last: number; drawnAt: number }>).detail;
          (globalThis as any).__latency.push(d.drawnAt - d.last);
        });
      });
      pages.push(tab);
    }
    await sleep(1500); // the pages' live feeds open
    sseLatency.length = 0;
    console.log(
      `publishing ${RATE}/s for ${SECONDS} s to ${VIEWERS} SSE viewers (${sseConnected} connected) and ${PAGES} browser tabs...`,
    );
    const loadDuring: number[] = [];
    const total = RATE * SECONDS;
    for (let i = 1; i <= total; i++) {
      device.publish(`bench/${thing}/t`, JSON.stringify({ v: Math.sin(i / 10) * 50 + 50, ts: Date.now() }));
      if (i % RATE === 0) loadDuring.push(loadavg()[0]!);
      await sleep(1000 / RATE);
    }
    await sleep(2000);
    const browserLatency: number[] = [];
    for (const tab of pages)
      browserLatency.push(...((await tab.evaluate(() => (globalThis as any).__latency)) as number[]));
    for (const c of controllers) c.abort();
    await device.endAsync();

    const result = {
      machine,
      loadAverageAtEnd: loadavg().map((x) => x.toFixed(2)),
      fleetList: {
        things: THINGS,
        seedSeconds,
        loads: LOADS,
        firstRenderMs: {
          median: median(firstRender),
          p95: percentile(firstRender, 95),
          all: firstRender.map(Math.round),
        },
        nextPageMs: { median: median(nextPage), p95: percentile(nextPage, 95) },
        countEndpointMs: { median: median(countMs) },
        target: '< 300 ms first render',
      },
      publishToChart: {
        viewers: VIEWERS,
        browserTabs: PAGES,
        rate: RATE,
        seconds: SECONDS,
        browser: {
          samples: browserLatency.length,
          p50: percentile(browserLatency, 50),
          p99: percentile(browserLatency, 99),
          max: Math.max(...browserLatency),
        },
        sse: {
          samples: sseLatency.length,
          p50: percentile(sseLatency, 50),
          p99: percentile(sseLatency, 99),
          max: Math.max(...sseLatency),
        },
        loadAverageDuring: median(loadDuring).toFixed(2),
        target: 'p99 < 250 ms with 100 viewers (Grafana Live documents several hundred ms)',
      },
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(OUT, '..'), { recursive: true });
    writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
  } finally {
    await browser.close();
    await p.stop();
  }
}

await main();
