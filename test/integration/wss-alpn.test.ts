import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uriEncode } from '../../src/sigv4/index.js';
import { allowAllDevice, startTestPlatform, waitFor, type TestPlatform } from '../helpers/platform.js';

/**
 * MQTT over WebSocket with TLS (`wss://host:port/mqtt`, server certificate only, SigV4 presigned with
 * service `iotdevicegateway`, reference §7.3) on `mqtt.wssPort`, and AWS's port-443 ALPN dispatch on
 * `mqtt.alpnPort` (reference §8.0): `x-amzn-mqtt-ca` is MQTT over mutual TLS, `x-amzn-http-ca` the device
 * HTTPS plane, `http/1.1` MQTT over WebSocket, all on one port.
 */

let platform: TestPlatform;
let admin: { accessKeyId: string; secretAccessKey: string };
let device: { cert: string; key: string };

beforeAll(async () => {
  // Device HTTPS has no port of its own here: the ALPN port is its only way in.
  platform = await startTestPlatform({ mqtt: { allowAnonymous: false, wssPort: 0, alpnPort: 0 } });
  admin = await platform.credentials.create('wss-admin', 'admin');
  device = await allowAllDevice(platform, 'alpn-all');
});
afterAll(async () => {
  await platform?.stop();
});

async function presignedWss(port: number, key = admin): Promise<string> {
  const signer = new SignatureV4({
    credentials: key,
    region: platform.config.region,
    service: 'iotdevicegateway',
    sha256: Sha256,
  });
  const signed = await signer.presign(
    new HttpRequest({
      method: 'GET',
      protocol: 'wss:',
      hostname: '127.0.0.1',
      port,
      path: '/mqtt',
      headers: { host: `127.0.0.1:${port}` },
    }),
    { expiresIn: 300 },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`)
    .join('&');
  return `wss://127.0.0.1:${port}/mqtt?${query}`;
}

const wssConnect = (url: string, clientId: string): Promise<MqttClient> =>
  mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ca: platform.tls.caPem,
    rejectUnauthorized: true,
  });

async function refusal(p: Promise<MqttClient>): Promise<number | undefined> {
  try {
    await (await p).endAsync(true);
  } catch (err) {
    return (err as { code?: number }).code;
  }
  throw new Error('connection accepted but should have been refused');
}

/** A TLS connection to the ALPN port offering `protocols`; resolves once the handshake is done. */
function alpnSocket(protocols: string[], withCert = true): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port: platform.endpoints.alpnPort!,
      ca: platform.tls.caPem,
      ALPNProtocols: protocols,
      ...(withCert ? { cert: device.cert, key: device.key } : {}),
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Send one MQTT 5 CONNECT on a raw socket and read the CONNACK. */
function mqttConnack(socket: TLSSocket, clientId: string): Promise<{ reasonCode: number }> {
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  return new Promise((resolve, reject) => {
    parser.on(
      'packet',
      (p: Packet) => p.cmd === 'connack' && resolve(p as unknown as { reasonCode: number }),
    );
    socket.on('data', (d: Buffer) => parser.parse(d));
    socket.once('close', () => reject(new Error('closed before CONNACK')));
    socket.write(
      mqttPacket.generate(
        { cmd: 'connect', protocolVersion: 5, clientId, clean: true, keepalive: 30 },
        { protocolVersion: 5 },
      ),
    );
  });
}

/** One raw HTTP/1.1 request (Connection: close) on a socket; resolves with the status and the whole reply. */
function httpOver(socket: TLSSocket, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.once('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }));
    socket.write(request);
  });
}

describe('MQTT over WSS (mqtt.wssPort)', () => {
  it('MQTT.js with a SigV4 presigned wss:// URL publishes and receives; the connection is wss', async () => {
    const port = platform.endpoints.wssPort!;
    expect(platform.endpoints.wss).toBe(`wss://127.0.0.1:${port}/mqtt`);
    const c = await wssConnect(await presignedWss(port), 'wss-client');
    expect(platform.broker.clients().find((x) => x.clientId === 'wss-client')?.transport).toBe('wss');
    const got: string[] = [];
    c.on('message', (t, p) => got.push(`${t}=${p.toString()}`));
    await c.subscribeAsync('wss/t', { qos: 1 });
    await c.publishAsync('wss/t', 'hello', { qos: 1 });
    await waitFor(() => got.includes('wss/t=hello'));
    await c.endAsync();
  });

  it('asks for no client certificate, and refuses a WebSocket without credentials or with a bad signature', async () => {
    const port = platform.endpoints.wssPort!;
    const s = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ host: '127.0.0.1', port, ca: platform.tls.caPem, ALPNProtocols: ['http/1.1'] });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
    expect(s.authorized).toBe(true);
    expect(s.alpnProtocol).toBe('http/1.1');
    s.destroy();
    expect(await refusal(wssConnect(`wss://127.0.0.1:${port}/mqtt`, 'wss-bare'))).toBe(0x87);
    const tampered = (await presignedWss(port)).replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`,
    );
    expect(await refusal(wssConnect(tampered, 'wss-bad'))).toBe(0x86);
  });
});

describe('ALPN on one port (mqtt.alpnPort)', () => {
  it('x-amzn-mqtt-ca: MQTT over mutual TLS', async () => {
    const s = await alpnSocket(['x-amzn-mqtt-ca']);
    expect(s.alpnProtocol).toBe('x-amzn-mqtt-ca');
    expect((await mqttConnack(s, 'alpn-raw')).reasonCode).toBe(0);
    expect(platform.broker.clients().find((x) => x.clientId === 'alpn-raw')?.transport).toBe('tls');
    s.destroy();
    // Mutual TLS only, as on 8883: no certificate, no MQTT.
    const bare = await alpnSocket(['x-amzn-mqtt-ca'], false);
    expect((await mqttConnack(bare, 'alpn-bare')).reasonCode).toBe(0x87);
    bare.destroy();
  });

  it('x-amzn-mqtt-ca through MQTT.js (ALPNProtocols), and x-amzn-http-ca: the device HTTPS plane on the same port', async () => {
    const sub = await mqtt.connectAsync(`mqtts://127.0.0.1:${platform.endpoints.alpnPort}`, {
      protocolVersion: 5,
      clientId: 'alpn-sub',
      reconnectPeriod: 0,
      ca: platform.tls.caPem,
      cert: device.cert,
      key: device.key,
      ALPNProtocols: ['x-amzn-mqtt-ca'],
    });
    const got: string[] = [];
    sub.on('message', (t, p) => got.push(`${t}=${p.toString()}`));
    await sub.subscribeAsync('alpn/#', { qos: 1 });

    const s = await alpnSocket(['x-amzn-http-ca']);
    expect(s.alpnProtocol).toBe('x-amzn-http-ca');
    const r = await httpOver(
      s,
      'POST /topics/alpn%2Fhttp?qos=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 5\r\n' +
        `x-amz-mqtt5-user-properties: ${Buffer.from('[{"via":"alpn"}]').toString('base64')}\r\n\r\nhello`,
    );
    expect(r.status).toBe(200);
    expect(r.text).toContain('"message":"OK"');
    await waitFor(() => got.includes('alpn/http=hello'));
    s.destroy();

    // Without a certificate the HTTPS plane answers 401 in AWS's shape.
    const bare = await alpnSocket(['x-amzn-http-ca'], false);
    const rr = await httpOver(
      bare,
      'POST /topics/alpn%2Fno HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
    );
    expect(rr.status).toBe(401);
    expect(rr.text.toLowerCase()).toContain('x-amzn-errortype: unauthorizedexception');
    bare.destroy();
    await sub.endAsync();
  });

  it('http/1.1: MQTT over WebSocket with a presigned URL on the same port', async () => {
    const c = await wssConnect(await presignedWss(platform.endpoints.alpnPort!), 'alpn-wss');
    expect(platform.broker.clients().find((x) => x.clientId === 'alpn-wss')?.transport).toBe('wss');
    await c.endAsync();
  });
});
