import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { signedFetch } from '../../src/api/index.js';
import { startTestPlatform, scrapeMetric, waitFor, type TestPlatform } from '../helpers/platform.js';
import { adminKey, ensureConsoleBuilt } from './browser.js';

/**
 * The console's server side over plain HTTP (fetch) and MQTT.js: the session cookie's flags, CSRF and Origin
 * checks, sign-in throttling, sign-out and deleted keys, the static files' CSP and caching, the telemetry
 * width bound, the live feed, and the read-only rule applied to session calls exactly as to SigV4 calls.
 */
let platform: TestPlatform;
let base: string;
let admin: { id: string; secret: string };

async function signIn(id: string, secret: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/console/api/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ accessKeyId: id, secretAccessKey: secret }),
  });
  const body = (await res.json()) as any;
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { res, body, setCookie, cookie: setCookie.split(';')[0]!, csrf: body.session?.csrf as string };
}

const call = (
  s: { cookie: string; csrf?: string },
  method: string,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
) =>
  fetch(`${base}${path}`, {
    method,
    headers: {
      cookie: s.cookie,
      ...(s.csrf ? { 'x-thingstead-csrf': s.csrf } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...extra,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

beforeAll(async () => {
  await ensureConsoleBuilt();
  platform = await startTestPlatform();
  base = platform.endpoints.http;
  admin = adminKey(platform);
}, 120_000);
afterAll(() => platform?.stop());

describe('console server', () => {
  test('serves the app with a strict CSP, no-cache index and immutable hashed assets', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await index.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${base}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    const again = await fetch(`${base}${asset}`, { headers: { 'if-none-match': js.headers.get('etag')! } });
    expect(again.status).toBe(304);
    // Only files of the build are served: no way out of the directory.
    expect((await fetch(`${base}/console/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${base}/console/assets/../../../package.json`)).status).toBe(404);
  });

  test('sign-in sets an HttpOnly, SameSite=Strict cookie (Secure behind TLS) and never returns the secret', async () => {
    const ok = await signIn(admin.id, admin.secret);
    expect(ok.res.status).toBe(200);
    expect(ok.setCookie).toMatch(/HttpOnly/);
    expect(ok.setCookie).toMatch(/SameSite=Strict/);
    expect(ok.setCookie).not.toMatch(/Secure/); // plain HTTP here; Secure where TLS serves it
    expect(ok.body.session).toMatchObject({ accessKeyId: admin.id, role: 'admin' });
    expect(JSON.stringify(ok.body)).not.toContain(admin.secret);
    // A proxy terminating TLS: the cookie is Secure.
    expect((await signIn(admin.id, admin.secret, { 'x-forwarded-proto': 'https' })).setCookie).toMatch(
      /; Secure/,
    );
  });

  test('session calls to the AWS API need the CSRF token and the same origin', async () => {
    const s = await freshSession();
    const search = { queryString: 'thingName:*' };
    const ok = await call(s, 'POST', '/indices/search', search);
    expect(ok.status).toBe(200);
    const noToken = await call({ cookie: s.cookie }, 'POST', '/indices/search', search);
    expect(noToken.status).toBe(403);
    expect(noToken.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
    expect(((await noToken.json()) as any).message).toContain('x-thingstead-csrf');
    const cross = await call(s, 'POST', '/indices/search', search, { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(((await cross.json()) as any).message).toMatch(
      /Cross-origin request refused: Origin https:\/\/evil.example/,
    );
    // A cross-origin sign-in (login CSRF) is refused too.
    expect((await signIn(admin.id, admin.secret, { origin: 'https://evil.example' })).res.status).toBe(403);
    const badService = await call(s, 'POST', '/indices/search', search, { 'x-thingstead-service': 'nope' });
    expect(badService.status).toBe(400);
    // Without any cookie the API answers as it does to an unsigned request.
    const none = await fetch(`${base}/things`);
    expect(none.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  });

  test('a read-only session is refused changes with the same error as a read-only SigV4 key', async () => {
    const key = await platform.credentials.create('server-viewer', 'read-only');
    const s = await signIn(key.accessKeyId, key.secretAccessKey);
    expect(s.body.session.role).toBe('read-only');
    expect((await call(s, 'GET', '/things')).status).toBe(200);
    const viaSession = await call(s, 'POST', '/things/ro-made', {});
    expect(viaSession.status).toBe(403);
    const sessionError = (await viaSession.json()) as any;
    const viaSigV4 = await signedFetch(
      {
        endpoint: base,
        accessKeyId: key.accessKeyId,
        secretAccessKey: key.secretAccessKey,
        region: 'us-east-1',
      },
      'POST',
      '/things/ro-made',
      { body: {} },
    ).catch((e: unknown) => e as any);
    expect(viaSigV4.status).toBe(403);
    expect(viaSession.headers.get('x-amzn-errortype')).toBe(viaSigV4.name);
    expect(sessionError.message).toBe(viaSigV4.message);
    expect(await platform.registry.describeThing({ thingName: 'ro-made' }).catch(() => null)).toBeNull();
    // iotdata: a shadow update is refused as well.
    const shadow = await call(
      s,
      'POST',
      '/things/ro-made/shadow',
      { state: { desired: { a: 1 } } },
      { 'x-thingstead-service': 'iotdata' },
    );
    expect(shadow.status).toBe(403);

    // The topic viewer's presigned URL connects as the read-only key: subscribe yes, publish no.
    const url = ((await (await call(s, 'POST', '/console/api/mqtt-url', {})).json()) as any).url as string;
    const viewer = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
    const granted = await viewer.subscribeAsync('things/#', { qos: 0 });
    expect(granted[0]!.qos).toBe(0);
    await expect(viewer.publishAsync('things/x/cmd', 'hi', { qos: 1 })).rejects.toThrow();
    await viewer.endAsync(true);
  });

  test('sign-out ends the session everywhere; a deleted key ends its sessions', async () => {
    const s = await freshSession();
    expect((await call(s, 'GET', '/console/api/session')).status).toBe(200);
    const out = await call(s, 'POST', '/console/api/sign-out', {});
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    const after = await call(s, 'GET', '/console/api/session');
    expect(after.status).toBe(401);
    expect(((await after.json()) as any).message).toBe(
      'Your console session has expired or was signed out; sign in again.',
    );
    expect((await call(s, 'POST', '/indices/search', { queryString: '*' })).status).toBe(401);

    const key = await platform.credentials.create('short-lived', 'admin');
    const k = await signIn(key.accessKeyId, key.secretAccessKey);
    expect((await call(k, 'GET', '/console/api/overview')).status).toBe(200);
    await platform.credentials.delete('short-lived');
    await waitFor(
      async () => (await call(k, 'GET', '/console/api/overview')).status === 401,
      5000,
      'session of a deleted key refused',
    );
  });

  test('telemetry is downsampled on the server to at most two points per pixel', async () => {
    const s = await freshSession();
    const t0 = Date.now() - 600_000;
    const points = Array.from({ length: 5000 }, (_, i) => ({
      thing: 'ts-1',
      metric: 'temp',
      ts: t0 + i * 100,
      value: i % 50,
    }));
    await platform.timeseries.write(points);
    await waitFor(
      async () => (await platform.timeseries.listSeries('ts-1'))[0]?.points === 5000,
      10_000,
      'points stored',
    );
    for (const width of [10, 100, 800]) {
      const r = (await (
        await call(
          s,
          'GET',
          `/console/api/telemetry?thing=ts-1&metric=temp&from=${t0}&to=${t0 + 500_000}&width=${width}`,
        )
      ).json()) as any;
      const n = r.series[0].points.length;
      expect(n).toBeLessThanOrEqual(2 * width + 1);
      expect(n).toBeGreaterThan(Math.min(2 * width, 5000) * 0.9);
    }
    const bad = await call(s, 'GET', '/console/api/telemetry?thing=ts-1&metric=temp&width=0');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).message).toBe(
      "width must be an integer from 1 to 10000 (pixels of the chart), got '0'.",
    );
  });

  test('the live feed streams committed points and the overview to every viewer', async () => {
    const s = await freshSession();
    const open = async () => {
      const ctrl = new AbortController();
      const res = await fetch(
        `${base}/console/api/live?overview=1&series=${encodeURIComponent(JSON.stringify([['live-1', 'rpm']]))}`,
        {
          headers: { cookie: s.cookie },
          signal: ctrl.signal,
        },
      );
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = res.body!.getReader();
      let text = '';
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
          if (done) break;
          text += new TextDecoder().decode(value);
        }
      })();
      return { text: () => text, close: () => ctrl.abort() };
    };
    const viewers = await Promise.all([open(), open(), open()]);
    await platform.timeseries.write([{ thing: 'live-1', metric: 'rpm', ts: Date.now(), value: 1234 }]);
    for (const v of viewers) {
      await waitFor(() => v.text().includes('"points":[['), 5000, 'points event');
      await waitFor(() => v.text().includes('event: overview'), 5000, 'overview event');
      expect(v.text()).toContain('1234');
    }
    for (const v of viewers) v.close();
  });

  // Last: it leaves this test process's address throttled for a minute.
  test('failed sign-ins are refused and, past ten a minute from one address, throttled', async () => {
    const before = await scrapeMetric(platform, 'thingstead_console_sign_ins_total', /outcome="failed"/);
    const bad = await signIn(admin.id, 'wrong');
    expect(bad.res.status).toBe(401);
    expect(bad.res.headers.get('x-amzn-errortype')).toBe('UnauthorizedException');
    expect(bad.body.message).toBe('Sign-in failed: unknown access key id or wrong secret access key.');
    for (let i = 0; i < 10; i++) await signIn('AKIANOSUCHKEY', 'x');
    const throttled = await signIn(admin.id, admin.secret);
    expect(throttled.res.status).toBe(400);
    expect(throttled.res.headers.get('x-amzn-errortype')).toBe('ThrottlingException');
    expect(throttled.body.message).toMatch(/Too many failed sign-ins from .*; wait \d+ s and try again\./);
    expect(await scrapeMetric(platform, 'thingstead_console_sign_ins_total', /outcome="failed"/)).toBe(
      before + 10,
    );
    expect(
      await scrapeMetric(platform, 'thingstead_console_sign_ins_total', /outcome="throttled"/),
    ).toBeGreaterThanOrEqual(2);
  });
});

async function freshSession() {
  return signIn(admin.id, admin.secret);
}
