import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsApiError, signedFetch } from '../../src/api/index.js';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

// The time-series HTTP API (SigV4-signed, a Thingstead extension): input validation answers AWS-style
// InvalidRequestException, relative times, raw JSON export, and retention through the API.

let p: TestPlatform;
let api: (method: string, path: string, req?: Parameters<typeof signedFetch>[3]) => Promise<any>;
beforeAll(async () => {
  p = await startTestPlatform();
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  const opts = {
    endpoint: p.endpoints.http,
    region: 'us-east-1',
    accessKeyId: profile.aws_access_key_id!,
    secretAccessKey: profile.aws_secret_access_key!,
  };
  api = (method, path, req = {}) => signedFetch(opts, method, path, req);
});
afterAll(async () => p?.stop());

const rejects = async (promise: Promise<unknown>, message: RegExp) => {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AwsApiError);
  expect(err).toMatchObject({
    status: 400,
    name: 'InvalidRequestException',
    message: expect.stringMatching(message),
  });
};

describe('time-series API', () => {
  it('validates its input', async () => {
    await rejects(api('GET', '/timeseries/query', { query: {} }), /metric is required/);
    await rejects(
      api('GET', '/timeseries/query', { query: { metric: 'm', step: 'soon' } }),
      /not a duration/,
    );
    await rejects(
      api('GET', '/timeseries/query', { query: { metric: 'm', step: '1m', agg: 'median' } }),
      /agg must be one of avg, min, max, sum, count, last, p50, p95, p99/,
    );
    await rejects(
      api('GET', '/timeseries/query', { query: { metric: 'm', from: '2026-01-02', to: '2026-01-01' } }),
      /from must be before to/,
    );
    await rejects(
      api('GET', '/timeseries/query', { query: { metric: 'm', from: 'yesterday' } }),
      /not epoch ms, ISO-8601/,
    );
    await rejects(
      api('GET', '/timeseries/query', { query: { metric: 'm', from: '0', to: '100000000000', step: '1ms' } }),
      /too many buckets/,
    );
    await rejects(
      api('POST', '/timeseries/points', { body: { points: [{ thing: 't', metric: 'm', value: { a: 1 } }] } }),
      /value must be a number or a string/,
    );
    await rejects(api('POST', '/timeseries/points', { body: { points: [] } }), /points must be an array/);
  });

  it('accepts relative times and ISO-8601, and writes with the default time now', async () => {
    await api('POST', '/timeseries/points', { body: { points: [{ thing: 'rel', metric: 'm', value: 7 }] } });
    const r = await api('GET', '/timeseries/query', {
      query: { metric: 'm', thing: 'rel', from: '-5m', to: 'now' },
    });
    expect(r.points.map((x: any) => x.value)).toEqual([7]);
    const iso = new Date(Date.now() - 60_000).toISOString();
    const r2 = await api('GET', '/timeseries/query', { query: { metric: 'm', thing: 'rel', from: iso } });
    expect(r2.points).toHaveLength(1);
  });

  it('runs retention through the API: raw points become rollups, still answering aggregates', async () => {
    const old = Date.now() - 10 * 86_400_000;
    const start = old - (old % 3_600_000);
    await api('POST', '/timeseries/points', {
      body: {
        points: [0, 1, 2, 3].map((i) => ({
          thing: 'old',
          metric: 'kwh',
          ts: start + i * 60_000,
          value: i + 1,
        })),
      },
    });
    const r = await api('POST', '/timeseries/retention', { body: { rawMaxAge: '7d', rollupStep: '1h' } });
    expect(r.deleted).toBe(4);
    const raw = await api('GET', '/timeseries/query', {
      query: { metric: 'kwh', thing: 'old', from: start, to: start + 3_600_000 },
    });
    expect(raw.points).toEqual([]);
    const sum = await api('GET', '/timeseries/query', {
      query: { metric: 'kwh', thing: 'old', from: start, to: start + 3_600_000, step: '1h', agg: 'sum' },
    });
    expect(sum.series).toEqual([{ key: 'old', points: [{ ts: start, value: 10 }] }]);
  });
});
