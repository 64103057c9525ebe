import { createHash, createHmac } from 'node:crypto';
import { canonicalQuery, canonicalUri, signingKey, uriEncode } from '../sigv4/index.js';

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

const amzDate = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

/**
 * A SigV4 presigned MQTT-over-WebSocket URL (reference §7.3), as the AWS IoT Device SDKs build it: signing
 * name `iotdevicegateway`, only `host` signed, the payload hash of an empty body. The console hands one to
 * the browser of a signed-in session so the topic viewer connects as that session's access key (the
 * broker's own authorization: admin keys everything, read-only keys connect, subscribe and receive); the
 * secret never leaves the server. Valid for `expiresSeconds` (the broker refuses it after that).
 * @example presignMqttUrl({ scheme: 'ws', host: '127.0.0.1:8080', path: '/mqtt', region, key, expiresSeconds: 60 })
 */
export function presignMqttUrl(o: {
  readonly scheme: 'ws' | 'wss';
  readonly host: string;
  readonly path: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly expiresSeconds: number;
  readonly now?: number;
}): string {
  const date = amzDate(o.now ?? Date.now());
  const service = 'iotdevicegateway';
  const scope = `${date.slice(0, 8)}/${o.region}/${service}/aws4_request`;
  const query = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${o.accessKeyId}/${scope}`],
    ['X-Amz-Date', date],
    ['X-Amz-Expires', String(o.expiresSeconds)],
    ['X-Amz-SignedHeaders', 'host'],
  ]
    .map(([k, v]) => `${k}=${uriEncode(v!)}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    canonicalUri(o.path),
    canonicalQuery(query),
    `host:${o.host}\n`,
    'host',
    EMPTY_SHA256,
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    date,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const signature = createHmac('sha256', signingKey(o.secretAccessKey, date.slice(0, 8), o.region, service))
    .update(stringToSign, 'utf8')
    .digest('hex');
  return `${o.scheme}://${o.host}${o.path}?${query}&X-Amz-Signature=${signature}`;
}
