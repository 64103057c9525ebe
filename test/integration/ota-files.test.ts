import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  CreateJobCommand,
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamCommand,
  ListStreamsCommand,
  UpdateStreamCommand,
} from '@aws-sdk/client-iot';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { downloadHttps } from '../../src/agent/index.js';
import { presignUrl, uploadFile } from '../../src/cli/ota.js';
import { waitFor } from '../helpers/platform.js';
import { jobsDevice, jobsPlatform, type JobsHarness } from './jobs-helpers.js';

/**
 * Firmware files (issue 11, OTA): upload by a presigned SigV4 PUT, content-addressed storage, signed
 * download URLs with ranges on the HTTP API port, 403 with a reason for expired and forged URLs, the
 * `${aws:iot:s3-presigned-url:...}` job-document placeholder resolved at delivery, and AWS's MQTT file
 * delivery (CreateStream ... ListStreams through @aws-sdk/client-iot; GetStream / DescribeStream in JSON and CBOR).
 */
const json = async (r: Response): Promise<any> => r.json();
let h: JobsHarness;
let conn: Parameters<typeof uploadFile>[0];
const image = randomBytes(300_000);
const sha256 = createHash('sha256').update(image).digest('hex');
let file: string;
beforeAll(async () => {
  h = await jobsPlatform({ ota: { maxFileBytes: 1_000_000 } });
  const key = await h.platform.credentials.create(`ota-${Date.now()}`, 'admin');
  conn = {
    endpoint: h.platform.endpoints.http,
    region: h.platform.config.region,
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
  };
  file = join(mkdtempSync(join(tmpdir(), 'ota-files-')), 'fw.bin');
  writeFileSync(file, image);
}, 60_000);
afterAll(async () => {
  await h?.platform.stop();
});

test('upload: stored under <dataDir>/files/<sha256> (0600); the same bytes again are not re-sent', async () => {
  const r = await uploadFile(conn, file, { sha256, size: image.length, name: 'fw.bin', version: '1.0.0' });
  expect(r.uploaded).toBe(true);
  expect(r.record).toMatchObject({ sha256, size: image.length, name: 'fw.bin', version: '1.0.0' });
  const stored = join(h.platform.endpoints.dataDir, 'files', sha256);
  expect(statSync(stored).size).toBe(image.length);
  expect(statSync(stored).mode & 0o777).toBe(0o600);
  expect(statSync(join(h.platform.endpoints.dataDir, 'ota-url.key')).mode & 0o777).toBe(0o600);
  expect((await uploadFile(conn, file, { sha256, size: image.length })).uploaded).toBe(false);
});

test('upload refusals: wrong digest, over ota.maxFileBytes, unsigned, read-only key', async () => {
  const put = (url: string, body: Buffer) => fetch(url, { method: 'PUT', body });
  const wrong = 'a'.repeat(64);
  let res = await put(
    presignUrl(conn, 'PUT', '/ota/files', { sha256: wrong, size: String(image.length) }),
    image,
  );
  expect(res.status).toBe(400);
  expect((await json(res)).message).toContain(`not the ${wrong} the upload was signed for`);
  const big = Buffer.alloc(1_000_001);
  const bigSha = createHash('sha256').update(big).digest('hex');
  res = await put(presignUrl(conn, 'PUT', '/ota/files', { sha256: bigSha, size: String(big.length) }), big);
  expect(res.status).toBe(413);
  expect((await json(res)).message).toContain('ota.maxFileBytes allows 1000000');
  res = await put(`${conn.endpoint}/ota/files?sha256=${sha256}&size=1`, image);
  expect(res.status).toBe(400);
  const ro = await h.platform.credentials.create(`ota-ro-${Date.now()}`, 'read-only');
  res = await put(
    presignUrl(
      { ...conn, accessKeyId: ro.accessKeyId, secretAccessKey: ro.secretAccessKey },
      'PUT',
      '/ota/files',
      {
        sha256,
        size: String(image.length),
      },
    ),
    image,
  );
  expect(res.status).toBe(403);
  expect(res.headers.get('x-amzn-errortype')).toBe('AccessDeniedException');
});

test('signed download: whole file, ranges (206, resume), 416; expired and forged URLs are 403 with the reason', async () => {
  const url = h.platform.ota.service.downloadUrl(sha256, 60);
  let res = await fetch(url);
  expect(res.status).toBe(200);
  expect(Buffer.from(await res.arrayBuffer()).equals(image)).toBe(true);
  res = await fetch(url, { headers: { range: 'bytes=1000-1999' } });
  expect(res.status).toBe(206);
  expect(res.headers.get('content-range')).toBe(`bytes 1000-1999/${image.length}`);
  expect(Buffer.from(await res.arrayBuffer()).equals(image.subarray(1000, 2000))).toBe(true);
  res = await fetch(url, { headers: { range: `bytes=${image.length - 10}-` } });
  expect(Buffer.from(await res.arrayBuffer()).equals(image.subarray(image.length - 10))).toBe(true);
  res = await fetch(url, { headers: { range: `bytes=${image.length}-` } });
  expect(res.status).toBe(416);
  // By name too.
  res = await fetch(h.platform.ota.service.downloadUrl('fw.bin', 60), { method: 'HEAD' });
  expect(res.headers.get('etag')).toBe(`"${sha256}"`);

  const expired = url.replace(
    /X-Thingstead-Expires=\d+/,
    `X-Thingstead-Expires=${Math.floor(Date.now() / 1000) - 5}`,
  );
  res = await fetch(expired);
  expect(res.status).toBe(403);
  // Changing the expiry breaks the signature: forged, not expired.
  expect((await json(res)).reason).toBe('forged');
  const signedPast = `${h.platform.endpoints.http}/ota/download/${sha256}?${h.platform.ota.signer.sign(
    `/ota/download/${sha256}`,
    Math.floor(Date.now() / 1000) - 5,
  )}`;
  res = await fetch(signedPast);
  expect(res.status).toBe(403);
  expect(res.headers.get('x-amzn-errortype')).toBe('ForbiddenException');
  const body = await json(res);
  expect(body.reason).toBe('expired');
  expect(body.message).toContain('Download refused: the signed URL expired at');
  res = await fetch(url.replace(sha256, 'b'.repeat(64)));
  expect((await json(res)).reason).toBe('forged');
  res = await fetch(`${h.platform.endpoints.http}/ota/download/${sha256}`);
  expect((await json(res)).reason).toBe('missing');
});

test('job documents: ${aws:iot:s3-presigned-url:...} becomes a signed URL at delivery, expiring per presignedUrlConfig', async () => {
  await h.things('ota-url-dev');
  const dev = await jobsDevice(h.platform, 'ota-url-dev', ['$aws/things/ota-url-dev/jobs/notify-next']);
  const placeholder = `\${aws:iot:s3-presigned-url:https://s3.amazonaws.com/thingstead/${sha256}}`;
  await h.iot.send(
    new CreateJobCommand({
      jobId: 'ota-url-job',
      targets: [h.arn('thing', 'ota-url-dev')],
      document: JSON.stringify({ url: placeholder }),
      presignedUrlConfig: { expiresInSec: 120 },
    }),
  );
  const before = Math.floor(Date.now() / 1000);
  const note = await waitFor(() => dev.got.find((m) => m.topic.endsWith('/notify-next') && m.body.execution));
  const url = new URL(note.body.execution.jobDocument.url);
  const expires = Number(url.searchParams.get('X-Thingstead-Expires'));
  expect(expires).toBeGreaterThanOrEqual(before + 120);
  expect(expires).toBeLessThanOrEqual(before + 122);
  const res = await fetch(url);
  expect(Buffer.from(await res.arrayBuffer()).equals(image)).toBe(true);
  // The control plane keeps the placeholder (AWS resolves it only for devices).
  const doc = await h.platform.jobs.service.getJobDocument({ jobId: 'ota-url-job' });
  expect(JSON.stringify(doc)).toContain('s3-presigned-url');
  await dev.client.endAsync();
});

test('streams through @aws-sdk/client-iot: create, describe, update (version+1), list, delete', async () => {
  const created = await h.iot.send(
    new CreateStreamCommand({
      streamId: 'fw-stream',
      description: 'firmware 1.0.0',
      files: [{ fileId: 0, s3Location: { bucket: 'thingstead', key: `firmware/${sha256}` } }],
      roleArn: 'arn:aws:iam::000000000000:role/ota',
    }),
  );
  expect(created).toMatchObject({ streamId: 'fw-stream', streamVersion: 1, description: 'firmware 1.0.0' });
  expect(created.streamArn).toBe(h.arn('stream', 'fw-stream'));
  const d = await h.iot.send(new DescribeStreamCommand({ streamId: 'fw-stream' }));
  expect(d.streamInfo?.files?.[0]?.s3Location?.key).toBe(`firmware/${sha256}`);
  expect(d.streamInfo?.createdAt).toBeInstanceOf(Date);
  await expect(
    h.iot.send(
      new CreateStreamCommand({
        streamId: 'fw-bad',
        files: [{ fileId: 0, s3Location: { bucket: 'b', key: 'nope' } }],
        roleArn: 'arn:aws:iam::000000000000:role/ota',
      }),
    ),
  ).rejects.toMatchObject({ name: 'InvalidRequestException' });
  await expect(
    h.iot.send(
      new CreateStreamCommand({
        streamId: 'fw-stream',
        files: created ? [{ fileId: 0, s3Location: { bucket: 'b', key: sha256 } }] : [],
        roleArn: 'arn:aws:iam::000000000000:role/ota',
      }),
    ),
  ).rejects.toMatchObject({ name: 'ResourceAlreadyExistsException' });
  const u = await h.iot.send(new UpdateStreamCommand({ streamId: 'fw-stream', description: 'v2' }));
  expect(u.streamVersion).toBe(2);
  await h.iot.send(
    new CreateStreamCommand({
      streamId: 'fw-other',
      files: [{ fileId: 3, s3Location: { bucket: 'b', key: 'fw.bin' } }],
      roleArn: 'arn:aws:iam::000000000000:role/ota',
    }),
  );
  const page1 = await h.iot.send(new ListStreamsCommand({ maxResults: 1, ascendingOrder: true }));
  expect(page1.streams?.map((s) => s.streamId)).toEqual(['fw-other']);
  const page2 = await h.iot.send(
    new ListStreamsCommand({ maxResults: 1, ascendingOrder: true, nextToken: page1.nextToken }),
  );
  expect(page2.streams?.map((s) => s.streamId)).toEqual(['fw-stream']);
  await h.iot.send(new DeleteStreamCommand({ streamId: 'fw-other' }));
  await expect(h.iot.send(new DescribeStreamCommand({ streamId: 'fw-other' }))).rejects.toMatchObject({
    name: 'ResourceNotFoundException',
  });
});

test('MQTT file delivery: DescribeStream and GetStream in JSON (base64 blocks, bitmap) and CBOR; rejections with AWS codes', async () => {
  const base = '$aws/things/ota-stream-dev/streams/fw-stream';
  const dev = await jobsDevice(h.platform, 'ota-stream-dev');
  const raw: Array<{ topic: string; payload: Buffer }> = [];
  dev.client.on('message', (topic, payload) => raw.push({ topic, payload }));
  await dev.client.publishAsync(`${base}/describe/json`, JSON.stringify({ c: 'd1' }), { qos: 1 });
  const desc = await waitFor(() => dev.got.find((m) => m.topic === `${base}/description/json`));
  expect(desc.body).toEqual({ c: 'd1', s: 2, d: 'v2', r: [{ f: 0, z: image.length }] });

  // Blocks 1, 2 and 5 of 4 KB by bitmap from offset 1: bits 0, 1, 4.
  await dev.client.publishAsync(
    `${base}/get/json`,
    JSON.stringify({ c: 'g1', s: 2, f: 0, l: 4096, o: 1, b: Buffer.from([0b00010011]).toString('base64') }),
    { qos: 1 },
  );
  const blocks = await waitFor(() => {
    const got = dev.got.filter((m) => m.topic === `${base}/data/json` && m.body.c === 'g1');
    return got.length === 3 ? got : null;
  });
  expect(blocks.map((b) => b.body.i)).toEqual([1, 2, 5]);
  for (const b of blocks) {
    expect(b.body.l).toBe(4096);
    expect(
      Buffer.from(b.body.p, 'base64').equals(image.subarray(b.body.i * 4096, (b.body.i + 1) * 4096)),
    ).toBe(true);
  }
  // A whole-file walk without bitmap: at most 128 KB per request, the last block short.
  await dev.client.publishAsync(`${base}/get/json`, JSON.stringify({ c: 'g2', f: 0, l: 65536, o: 4 }), {
    qos: 1,
  });
  const last = await waitFor(() => dev.got.find((m) => m.body?.c === 'g2' && m.body.i === 4));
  expect(last.body.l).toBe(image.length - 4 * 65536);

  // CBOR: byte-string payloads.
  await dev.client.subscribeAsync(`${base}/+/cbor`, { qos: 1 });
  await dev.client.publishAsync(
    `${base}/get/cbor`,
    Buffer.from(cborEncode({ c: 'c1', f: 0, l: 1024, o: 0, n: 2 })),
    { qos: 1 },
  );
  const cbor = await waitFor(() => {
    const got = raw.filter((m) => m.topic === `${base}/data/cbor`).map((m) => cborDecode(m.payload));
    return got.length === 2 ? got : null;
  });
  expect(cbor.map((b) => b.i)).toEqual([0, 1]);
  expect(Buffer.from(cbor[1].p as Uint8Array).equals(image.subarray(1024, 2048))).toBe(true);

  const rejected = async (body: Record<string, unknown>) => {
    await dev.client.publishAsync(`${base}/get/json`, JSON.stringify(body), { qos: 1 });
    return (
      await waitFor(() => dev.got.find((m) => m.topic === `${base}/rejected/json` && m.body.c === body.c))
    ).body;
  };
  expect(await rejected({ c: 'r1', f: 0, l: 100 })).toMatchObject({ o: 'BlockSizeOutOfBounds' });
  expect(await rejected({ c: 'r2', f: 0, l: 4096, s: 1 })).toMatchObject({ o: 'VersionMismatch' });
  expect(await rejected({ c: 'r3', f: 9, l: 4096 })).toMatchObject({ o: 'ResourceNotFound' });
  expect(await rejected({ c: 'r4', f: 0, l: 4096, o: 5000 })).toMatchObject({ o: 'OffsetOutOfBounds' });
  expect(await rejected({ c: 'r5', f: 0, l: 131072 })).toMatchObject({ o: 'BlockSizeOutOfBounds' });
  await dev.client.publishAsync(`${base}/get/json`, '{not json', { qos: 1 });
  await waitFor(() => dev.got.find((m) => m.topic === `${base}/rejected/json` && m.body.o === 'InvalidJson'));
  await dev.client.endAsync();
});

test('the agent downloader resumes a partial download with a Range request (the held prefix is not fetched again)', async () => {
  const target = join(mkdtempSync(join(tmpdir(), 'ota-resume-')), 'fw.img');
  // A prefix of zeros stands for what an interrupted download left: resuming keeps it, refetching would not.
  writeFileSync(`${target}.part`, Buffer.alloc(100_000));
  await downloadHttps({
    url: h.platform.ota.service.downloadUrl(sha256, 60),
    file: target,
    size: image.length,
    tls: {},
  });
  const got = readFileSync(target);
  expect(got.length).toBe(image.length);
  expect(got.subarray(0, 100_000).equals(Buffer.alloc(100_000))).toBe(true);
  expect(got.subarray(100_000).equals(image.subarray(100_000))).toBe(true);
});

const run = promisify(execFile);
test('streams through the AWS CLI and boto3 (describe-stream, list-streams)', async () => {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: h.platform.endpoints.dataDir,
    AWS_ACCESS_KEY_ID: conn.accessKeyId,
    AWS_SECRET_ACCESS_KEY: conn.secretAccessKey,
    AWS_CONFIG_FILE: join(h.platform.endpoints.dataDir, 'no-config'),
    AWS_DEFAULT_REGION: h.platform.config.region,
    AWS_PAGER: '',
  };
  const cli = await run(
    'aws',
    [
      'iot',
      'describe-stream',
      '--stream-id',
      'fw-stream',
      '--endpoint-url',
      conn.endpoint,
      '--output',
      'json',
    ],
    { env },
  );
  const described = JSON.parse(cli.stdout);
  expect(described.streamInfo).toMatchObject({ streamId: 'fw-stream', streamVersion: 2, description: 'v2' });
  const py = await run(
    'python3',
    [
      '-c',
      `import boto3, json, sys
iot = boto3.client('iot', endpoint_url=sys.argv[1], region_name=sys.argv[2])
r = iot.create_stream(streamId='py-stream', files=[{'fileId': 1, 's3Location': {'bucket': 'b', 'key': sys.argv[3]}}], roleArn='arn:aws:iam::000000000000:role/ota')
l = iot.list_streams(ascendingOrder=True)
print(json.dumps({'created': r['streamVersion'], 'ids': [s['streamId'] for s in l['streams']]}))`,
      conn.endpoint,
      h.platform.config.region,
      sha256,
    ],
    { env },
  );
  expect(JSON.parse(py.stdout)).toEqual({ created: 1, ids: ['fw-stream', 'py-stream'] });
}, 60_000);
