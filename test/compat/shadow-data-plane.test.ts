import { AWS, PYTHON, awsEnv, awsTools, run } from '../helpers/tools.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteThingShadowCommand,
  GetThingShadowCommand,
  IoTDataPlaneClient,
  ListNamedShadowsForThingCommand,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCredentialsFile } from '../../src/cli/connection.js';
import { signRequest } from '../../src/sigv4/index.js';
import { startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * The HTTP shadow operations of the data plane (reference §4, §6, §8.2) through the three real clients:
 * `@aws-sdk/client-iot-data-plane` (payload a Uint8Array), boto3 `iot-data` (a StreamingBody) and
 * `aws iot-data` (get/update/delete write the document to an outfile), signed as `iotdata` with the admin
 * credentials the platform writes to `<dataDir>/credentials`. Error documents are asserted field by field:
 * the exception name the SDKs derive from x-amzn-ErrorType, the HTTP status, and AWS's shadow body
 * `{"code": <int>, "message": ...}`. A REST update publishes /update/accepted, /update/delta and
 * /update/documents to an MQTT.js subscriber (reference §8.2: "REST UpdateThingShadow also publishes").
 */

const { haveAws, haveBoto3 } = await awsTools('its shadow tests');

let p: TestPlatform;
let data: IoTDataPlaneClient;
let creds: { accessKeyId: string; secretAccessKey: string };
let sub: MqttClient;
const got: Array<{ topic: string; body: any }> = [];

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const dec = (b: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(b));

beforeAll(async () => {
  p = await startTestPlatform({ shadow: { maxUpdatesPerSecondPerThing: 0 } });
  const profile = parseCredentialsFile(readFileSync(p.endpoints.credentialsFile!, 'utf8')).default!;
  creds = { accessKeyId: profile.aws_access_key_id!, secretAccessKey: profile.aws_secret_access_key! };
  data = new IoTDataPlaneClient({
    endpoint: p.endpoints.http,
    region: p.config.region,
    credentials: creds,
    maxAttempts: 1,
  });
  sub = await mqtt.connectAsync(p.endpoints.mqtt!, {
    protocolVersion: 5,
    clientId: 'shadow-dp-sub',
    reconnectPeriod: 0,
  });
  sub.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
  await sub.subscribeAsync('$aws/things/+/shadow/#', { qos: 1 });
});
afterAll(async () => {
  data?.destroy();
  await sub?.endAsync();
  await p?.stop();
});

/** The AWS error an SDK call rejects with, as the fields a caller reads. */
async function sdkError(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (err) {
    const e = err as Error & { $metadata: { httpStatusCode: number }; $fault: string; code?: unknown };
    return { name: e.name, message: e.message, status: e.$metadata.httpStatusCode, fault: e.$fault };
  }
  throw new Error('the call succeeded but should have failed');
}

/** The same request signed by hand (iotdata), for the raw status, error header and body. */
async function raw(method: string, path: string, query = '', body = '') {
  const url = new URL(p.endpoints.http);
  const headers = signRequest({
    method,
    host: url.host,
    path,
    query,
    body: Buffer.from(body),
    region: p.config.region,
    service: 'iotdata',
    ...creds,
  });
  const { host: _host, ...send } = headers;
  const res = await fetch(`${p.endpoints.http}${path}${query ? `?${query}` : ''}`, {
    method,
    headers: send,
    ...(body ? { body } : {}),
  });
  return {
    status: res.status,
    errorType: res.headers.get('x-amzn-errortype'),
    contentType: res.headers.get('content-type'),
    body: JSON.parse(await res.text()),
  };
}

const now = () => Math.floor(Date.now() / 1000);

describe('@aws-sdk/client-iot-data-plane', () => {
  test('UpdateThingShadow: the accepted document, and accepted, delta, documents published in order', async () => {
    const before = now();
    got.length = 0;
    const out = await data.send(
      new UpdateThingShadowCommand({
        thingName: 'sdk-lamp',
        payload: enc({ state: { desired: { color: 'red', level: { b: 80 } } }, clientToken: 'sdk-1' }),
      }),
    );
    expect(out.payload).toBeInstanceOf(Uint8Array);
    const doc = dec(out.payload);
    expect(Object.keys(doc).sort()).toEqual(['clientToken', 'metadata', 'state', 'timestamp', 'version']);
    expect(doc.state).toEqual({ desired: { color: 'red', level: { b: 80 } } });
    expect(doc.version).toBe(1);
    expect(doc.clientToken).toBe('sdk-1');
    expect(doc.timestamp).toBeGreaterThanOrEqual(before);
    expect(doc.timestamp).toBeLessThanOrEqual(now());
    expect(doc.metadata).toEqual({
      desired: { color: { timestamp: doc.timestamp }, level: { b: { timestamp: doc.timestamp } } },
    });

    const T = '$aws/things/sdk-lamp/shadow';
    await waitFor(() => got.find((m) => m.topic === `${T}/update/documents`), 5000, 'documents');
    expect(got.map((m) => m.topic)).toEqual([
      `${T}/update/accepted`,
      `${T}/update/delta`,
      `${T}/update/documents`,
    ]);
    expect(got[0]!.body).toEqual(doc);
    expect(got[1]!.body).toEqual({
      version: 1,
      timestamp: doc.timestamp,
      state: { color: 'red', level: { b: 80 } },
      metadata: { color: { timestamp: doc.timestamp }, level: { b: { timestamp: doc.timestamp } } },
      clientToken: 'sdk-1',
    });
    expect(got[2]!.body).toEqual({
      current: {
        state: { desired: { color: 'red', level: { b: 80 } } },
        metadata: doc.metadata,
        version: 1,
      },
      timestamp: doc.timestamp,
      clientToken: 'sdk-1',
    });
  });

  test('a reported-only update publishes accepted and documents (previous and current), no delta', async () => {
    got.length = 0;
    const out = dec(
      (
        await data.send(
          new UpdateThingShadowCommand({
            thingName: 'sdk-lamp',
            payload: enc({ state: { reported: { color: 'blue' } } }),
          }),
        )
      ).payload,
    );
    expect(out.version).toBe(2);
    expect(out.clientToken).toBeUndefined();
    const T = '$aws/things/sdk-lamp/shadow';
    const docs = await waitFor(() => got.find((m) => m.topic === `${T}/update/documents`));
    expect(docs.body.previous).toMatchObject({ version: 1, state: { desired: { color: 'red' } } });
    expect(docs.body.current).toMatchObject({
      version: 2,
      state: { desired: { color: 'red', level: { b: 80 } }, reported: { color: 'blue' } },
    });
    // The delta still differs, but this update wrote only reported and did not change it.
    expect(got.map((m) => m.topic)).toEqual([`${T}/update/accepted`, `${T}/update/documents`]);
  });

  test('GetThingShadow: the whole document with the delta and its full path', async () => {
    const out = await data.send(new GetThingShadowCommand({ thingName: 'sdk-lamp' }));
    expect(out.payload).toBeInstanceOf(Uint8Array);
    const doc = dec(out.payload);
    expect(Object.keys(doc).sort()).toEqual(['metadata', 'state', 'timestamp', 'version']);
    expect(doc.state).toEqual({
      desired: { color: 'red', level: { b: 80 } },
      reported: { color: 'blue' },
      delta: { color: 'red', level: { b: 80 } },
    });
    expect(doc.version).toBe(2);
    expect(doc.metadata.reported).toEqual({ color: { timestamp: expect.any(Number) } });
    expect(Math.abs(doc.timestamp - now())).toBeLessThanOrEqual(2);
  });

  test('named shadows are separate documents addressed by ?name=', async () => {
    const up = dec(
      (
        await data.send(
          new UpdateThingShadowCommand({
            thingName: 'sdk-lamp',
            shadowName: 'config',
            payload: enc({ state: { reported: { fw: '1.2.3' } } }),
          }),
        )
      ).payload,
    );
    expect(up).toMatchObject({ state: { reported: { fw: '1.2.3' } }, version: 1 });
    const named = dec(
      (await data.send(new GetThingShadowCommand({ thingName: 'sdk-lamp', shadowName: 'config' }))).payload,
    );
    expect(named.state).toEqual({ reported: { fw: '1.2.3' } });
    expect(named.version).toBe(1);
    await waitFor(() =>
      got.find((m) => m.topic === '$aws/things/sdk-lamp/shadow/name/config/update/accepted'),
    );
    const classic = dec((await data.send(new GetThingShadowCommand({ thingName: 'sdk-lamp' }))).payload);
    expect(classic.version).toBe(2);
  });

  test('404: no shadow, as ResourceNotFoundException with the body {code:404, message}', async () => {
    expect(await sdkError(data.send(new GetThingShadowCommand({ thingName: 'sdk-none' })))).toEqual({
      name: 'ResourceNotFoundException',
      message: 'No shadow exists with name: sdk-none',
      status: 404,
      fault: 'client',
    });
    expect(
      await sdkError(data.send(new GetThingShadowCommand({ thingName: 'sdk-lamp', shadowName: 'nope' }))),
    ).toMatchObject({ name: 'ResourceNotFoundException', message: 'No shadow exists with name: nope' });
    expect(await sdkError(data.send(new DeleteThingShadowCommand({ thingName: 'sdk-none' })))).toMatchObject({
      name: 'ResourceNotFoundException',
      status: 404,
    });
    const r = await raw('GET', '/things/sdk-none/shadow');
    expect(r.status).toBe(404);
    expect(r.errorType).toBe('ResourceNotFoundException');
    expect(r.contentType).toMatch(/^application\/json/);
    expect(r.body).toEqual({
      code: 404,
      message: 'No shadow exists with name: sdk-none',
      timestamp: expect.any(Number),
    });
    expect(Math.abs(r.body.timestamp - now())).toBeLessThanOrEqual(2);
  });

  test('409: a stale version is ConflictException "Version conflict"; the right version is accepted', async () => {
    const stale = UpdateThingShadowCommand;
    expect(
      await sdkError(
        data.send(
          new stale({
            thingName: 'sdk-lamp',
            payload: enc({ state: { desired: { color: 'green' } }, version: 1 }),
          }),
        ),
      ),
    ).toEqual({ name: 'ConflictException', message: 'Version conflict', status: 409, fault: 'client' });
    const r = await raw(
      'POST',
      '/things/sdk-lamp/shadow',
      '',
      JSON.stringify({ state: { desired: { color: 'green' } }, version: 1 }),
    );
    expect(r).toMatchObject({ status: 409, errorType: 'ConflictException' });
    expect(r.body).toEqual({ code: 409, message: 'Version conflict', timestamp: expect.any(Number) });
    // Nothing changed, so version 2 is still current and is accepted.
    const ok = dec(
      (
        await data.send(
          new UpdateThingShadowCommand({
            thingName: 'sdk-lamp',
            payload: enc({ state: { desired: { color: 'green' } }, version: 2 }),
          }),
        )
      ).payload,
    );
    expect(ok.version).toBe(3);
  });

  test('400: AWS texts for invalid documents, as InvalidRequestException', async () => {
    const cases: Array<[string, string]> = [
      ['{not json', 'Invalid JSON'],
      ['{"desired":{}}', 'Missing required node: state'],
      ['{"state":5}', 'State node must be an object'],
      ['{"state":{"desired":[1]}}', 'Desired node must be an object'],
      ['{"state":{"reported":"x"}}', 'Reported node must be an object'],
      ['{"state":{"other":{}}}', 'State contains an invalid node'],
      ['{"state":{"desired":{"a":1}},"version":"7"}', 'Invalid version'],
      [`{"state":{"desired":{"a":1}},"clientToken":"${'t'.repeat(65)}"}`, 'Invalid clientToken'],
      [
        '{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}',
        'JSON contains too many levels of nesting; maximum is 6',
      ],
    ];
    for (const [body, message] of cases) {
      expect(
        await sdkError(data.send(new UpdateThingShadowCommand({ thingName: 'sdk-bad', payload: enc(body) }))),
        body,
      ).toEqual({ name: 'InvalidRequestException', message, status: 400, fault: 'client' });
    }
    const r = await raw('POST', '/things/sdk-bad/shadow', '', '{"state":5}');
    expect(r).toMatchObject({ status: 400, errorType: 'InvalidRequestException' });
    expect(r.body).toEqual({
      code: 400,
      message: 'State node must be an object',
      timestamp: expect.any(Number),
    });
    // Nothing was written by any of them.
    expect(await sdkError(data.send(new GetThingShadowCommand({ thingName: 'sdk-bad' })))).toMatchObject({
      status: 404,
    });
  });

  test('413: a state over 8 KB is RequestEntityTooLargeException with {code:413}', async () => {
    const big = { state: { reported: { blob: 'x'.repeat(9000) } } };
    expect(
      await sdkError(data.send(new UpdateThingShadowCommand({ thingName: 'sdk-big', payload: enc(big) }))),
    ).toEqual({
      name: 'RequestEntityTooLargeException',
      message: 'The payload exceeds the maximum size allowed',
      status: 413,
      fault: 'client',
    });
    const r = await raw('POST', '/things/sdk-big/shadow', '', JSON.stringify(big));
    expect(r).toMatchObject({ status: 413, errorType: 'RequestEntityTooLargeException' });
    expect(r.body).toEqual({
      code: 413,
      message: 'The payload exceeds the maximum size allowed',
      timestamp: expect.any(Number),
    });
    // Under the limit in two halves, the merged state crosses it: refused as well, the first half kept.
    const half = (k: string) => enc({ state: { reported: { [k]: 'y'.repeat(4500) } } });
    await data.send(new UpdateThingShadowCommand({ thingName: 'sdk-big', payload: half('a') }));
    expect(
      await sdkError(data.send(new UpdateThingShadowCommand({ thingName: 'sdk-big', payload: half('b') }))),
    ).toMatchObject({ name: 'RequestEntityTooLargeException', status: 413 });
    const kept = dec((await data.send(new GetThingShadowCommand({ thingName: 'sdk-big' }))).payload);
    expect(Object.keys(kept.state.reported)).toEqual(['a']);
    expect(kept.version).toBe(1);
  });

  test('DeleteThingShadow: {version, timestamp}; then 404; an update after it continues the version', async () => {
    await data.send(
      new UpdateThingShadowCommand({
        thingName: 'sdk-del',
        payload: enc({ state: { reported: { on: 1 } } }),
      }),
    );
    await data.send(
      new UpdateThingShadowCommand({
        thingName: 'sdk-del',
        payload: enc({ state: { reported: { on: 2 } } }),
      }),
    );
    got.length = 0;
    const out = await data.send(new DeleteThingShadowCommand({ thingName: 'sdk-del' }));
    expect(out.payload).toBeInstanceOf(Uint8Array);
    const body = dec(out.payload);
    expect(body).toEqual({ version: 2, timestamp: expect.any(Number) });
    const accepted = await waitFor(() =>
      got.find((m) => m.topic === '$aws/things/sdk-del/shadow/delete/accepted'),
    );
    expect(accepted.body).toEqual(body);
    expect(await sdkError(data.send(new GetThingShadowCommand({ thingName: 'sdk-del' })))).toMatchObject({
      name: 'ResourceNotFoundException',
      message: 'No shadow exists with name: sdk-del',
    });
    const again = dec(
      (
        await data.send(
          new UpdateThingShadowCommand({
            thingName: 'sdk-del',
            payload: enc({ state: { reported: { on: 3 } } }),
          }),
        )
      ).payload,
    );
    expect(again.version).toBe(3);
    const doc = dec((await data.send(new GetThingShadowCommand({ thingName: 'sdk-del' }))).payload);
    expect(doc.state).toEqual({ reported: { on: 3 } });
  });

  test('ListNamedShadowsForThing pages with pageSize and nextToken, with an epoch-second timestamp', async () => {
    const names = ['n-e', 'n-a', 'n-d', 'n-b', 'n-c'];
    for (const shadowName of names)
      await data.send(
        new UpdateThingShadowCommand({
          thingName: 'sdk-list',
          shadowName,
          payload: enc({ state: { reported: { n: shadowName } } }),
        }),
      );
    // The classic shadow exists too, and is not listed.
    await data.send(
      new UpdateThingShadowCommand({
        thingName: 'sdk-list',
        payload: enc({ state: { reported: { c: 1 } } }),
      }),
    );
    const pages: string[][] = [];
    let nextToken: string | undefined;
    do {
      const out = await data.send(
        new ListNamedShadowsForThingCommand({ thingName: 'sdk-list', pageSize: 2, nextToken }),
      );
      expect(typeof out.timestamp).toBe('number');
      expect(Math.abs(out.timestamp! - now())).toBeLessThanOrEqual(2);
      pages.push(out.results ?? []);
      nextToken = out.nextToken;
    } while (nextToken);
    expect(pages).toEqual([['n-a', 'n-b'], ['n-c', 'n-d'], ['n-e']]);
    const all = await data.send(new ListNamedShadowsForThingCommand({ thingName: 'sdk-list' }));
    expect(all.results).toEqual(['n-a', 'n-b', 'n-c', 'n-d', 'n-e']);
    expect(all.nextToken).toBeUndefined();
    // A deleted named shadow leaves the list.
    await data.send(new DeleteThingShadowCommand({ thingName: 'sdk-list', shadowName: 'n-c' }));
    const after = await data.send(
      new ListNamedShadowsForThingCommand({ thingName: 'sdk-list', pageSize: 100 }),
    );
    expect(after.results).toEqual(['n-a', 'n-b', 'n-d', 'n-e']);
    // pageSize outside 1..100 (the model's range) is refused.
    expect(
      await sdkError(
        data.send(new ListNamedShadowsForThingCommand({ thingName: 'sdk-list', pageSize: 101 })),
      ),
    ).toMatchObject({ name: 'InvalidRequestException', status: 400 });
  });
});

const env = () => awsEnv(p);

describe.skipIf(!haveBoto3)('boto3 iot-data', () => {
  test('update, get (StreamingBody), named, list paged, delete, and the error documents', async () => {
    got.length = 0;
    const script = `
import boto3, json, sys
from botocore.exceptions import ClientError
c = boto3.client('iot-data', endpoint_url=sys.argv[1])
def err(f):
    try:
        f()
        return None
    except ClientError as e:
        return {'code': e.response['Error']['Code'], 'message': e.response['Error']['Message'],
                'status': e.response['ResponseMetadata']['HTTPStatusCode'],
                'errorType': e.response['ResponseMetadata']['HTTPHeaders'].get('x-amzn-errortype')}
body = lambda r: json.loads(r['payload'].read())
up = body(c.update_thing_shadow(thingName='boto-lamp',
    payload=json.dumps({'state': {'desired': {'mode': 'eco'}}, 'clientToken': 'b1'}).encode()))
up2 = body(c.update_thing_shadow(thingName='boto-lamp', payload=b'{"state":{"reported":{"mode":"off"}}}'))
got = body(c.get_thing_shadow(thingName='boto-lamp'))
for n in ['b', 'a', 'c']:
    c.update_thing_shadow(thingName='boto-lamp', shadowName='s-' + n, payload=b'{"state":{"reported":{"x":1}}}')
named = body(c.get_thing_shadow(thingName='boto-lamp', shadowName='s-b'))
pages = []
token = None
while True:
    kw = {'thingName': 'boto-lamp', 'pageSize': 2}
    if token: kw['nextToken'] = token
    r = c.list_named_shadows_for_thing(**kw)
    pages.append({'results': r['results'], 'timestamp': r['timestamp']})
    token = r.get('nextToken')
    if not token: break
deleted = body(c.delete_thing_shadow(thingName='boto-lamp', shadowName='s-a'))
print(json.dumps({
  'up': up, 'up2': up2, 'get': got, 'named': named, 'pages': pages, 'deleted': deleted,
  'missing': err(lambda: c.get_thing_shadow(thingName='boto-lamp', shadowName='s-a')),
  'conflict': err(lambda: c.update_thing_shadow(thingName='boto-lamp', payload=b'{"state":{"desired":{}},"version":1}')),
  'invalid': err(lambda: c.update_thing_shadow(thingName='boto-lamp', payload=b'{"state":[]}')),
  'large': err(lambda: c.update_thing_shadow(thingName='boto-lamp',
    payload=json.dumps({'state': {'reported': {'x': 'y' * 9000}}}).encode())),
}))
`;
    const r = await run(PYTHON, ['-c', script, p.endpoints.http], { env: env() });
    const out = JSON.parse(r.stdout);
    expect(out.up).toMatchObject({ state: { desired: { mode: 'eco' } }, version: 1, clientToken: 'b1' });
    expect(out.up2).toMatchObject({ state: { reported: { mode: 'off' } }, version: 2 });
    expect(out.get.state).toEqual({
      desired: { mode: 'eco' },
      reported: { mode: 'off' },
      delta: { mode: 'eco' },
    });
    expect(out.get.version).toBe(2);
    expect(out.named).toMatchObject({ state: { reported: { x: 1 } }, version: 1 });
    expect(out.pages.map((pg: any) => pg.results)).toEqual([['s-a', 's-b'], ['s-c']]);
    for (const pg of out.pages) expect(Math.abs(pg.timestamp - now())).toBeLessThanOrEqual(5);
    expect(out.deleted).toEqual({ version: 1, timestamp: expect.any(Number) });
    // boto3 reads the name from x-amzn-ErrorType; the numeric body code does not override it.
    expect(out.missing).toEqual({
      code: 'ResourceNotFoundException',
      message: 'No shadow exists with name: s-a',
      status: 404,
      errorType: 'ResourceNotFoundException',
    });
    expect(out.conflict).toEqual({
      code: 'ConflictException',
      message: 'Version conflict',
      status: 409,
      errorType: 'ConflictException',
    });
    expect(out.invalid).toEqual({
      code: 'InvalidRequestException',
      message: 'State node must be an object',
      status: 400,
      errorType: 'InvalidRequestException',
    });
    expect(out.large).toEqual({
      code: 'RequestEntityTooLargeException',
      message: 'The payload exceeds the maximum size allowed',
      status: 413,
      errorType: 'RequestEntityTooLargeException',
    });
    // The REST updates were published like MQTT ones.
    await waitFor(() => got.find((m) => m.topic === '$aws/things/boto-lamp/shadow/update/delta'));
    expect(got.find((m) => m.topic === '$aws/things/boto-lamp/shadow/update/delta')!.body).toMatchObject({
      version: 1,
      state: { mode: 'eco' },
      clientToken: 'b1',
    });
  });
});

describe.skipIf(!haveAws)('aws iot-data', () => {
  async function aws(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await run(
        AWS,
        ['iot-data', ...args, '--endpoint-url', p.endpoints.http, '--output', 'json'],
        { env: env() },
      );
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }
  const outfile = (name: string) => join(p.endpoints.dataDir, `${name}.json`);
  const read = (name: string) => JSON.parse(readFileSync(outfile(name), 'utf8'));

  test('update-thing-shadow, get-thing-shadow (outfile), named, list, delete, errors', async () => {
    const up = await aws([
      'update-thing-shadow',
      '--thing-name',
      'cli-lamp',
      '--cli-binary-format',
      'raw-in-base64-out',
      '--payload',
      '{"state":{"desired":{"temp":22}}}',
      outfile('up'),
    ]);
    expect(up).toMatchObject({ code: 0 });
    expect(read('up')).toMatchObject({ state: { desired: { temp: 22 } }, version: 1 });
    const get = await aws(['get-thing-shadow', '--thing-name', 'cli-lamp', outfile('get')]);
    expect(get.code).toBe(0);
    expect(read('get').state).toEqual({ desired: { temp: 22 }, delta: { temp: 22 } });
    const named = await aws([
      'update-thing-shadow',
      '--thing-name',
      'cli-lamp',
      '--shadow-name',
      'ota',
      '--cli-binary-format',
      'raw-in-base64-out',
      '--payload',
      '{"state":{"reported":{"fw":"2.0"}}}',
      outfile('named'),
    ]);
    expect(named.code).toBe(0);
    const gn = await aws([
      'get-thing-shadow',
      '--thing-name',
      'cli-lamp',
      '--shadow-name',
      'ota',
      outfile('gn'),
    ]);
    expect(gn.code).toBe(0);
    expect(read('gn')).toMatchObject({ state: { reported: { fw: '2.0' } }, version: 1 });
    const list = await aws(['list-named-shadows-for-thing', '--thing-name', 'cli-lamp', '--page-size', '1']);
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(listed.results).toEqual(['ota']);
    expect(typeof listed.timestamp).toBe('number');
    const del = await aws(['delete-thing-shadow', '--thing-name', 'cli-lamp', outfile('del')]);
    expect(del.code).toBe(0);
    expect(read('del')).toEqual({ version: 1, timestamp: expect.any(Number) });

    const missing = await aws(['get-thing-shadow', '--thing-name', 'cli-lamp', outfile('missing')]);
    expect(missing.code).toBe(254);
    expect(missing.stderr).toContain(
      'An error occurred (ResourceNotFoundException) when calling the GetThingShadow operation: No shadow exists with name: cli-lamp',
    );
    const conflict = await aws([
      'update-thing-shadow',
      '--thing-name',
      'cli-lamp',
      '--shadow-name',
      'ota',
      '--cli-binary-format',
      'raw-in-base64-out',
      '--payload',
      '{"state":{"reported":{"fw":"2.1"}},"version":7}',
      outfile('conflict'),
    ]);
    expect(conflict.code).toBe(254);
    expect(conflict.stderr).toContain(
      'An error occurred (ConflictException) when calling the UpdateThingShadow operation: Version conflict',
    );
  });
});
