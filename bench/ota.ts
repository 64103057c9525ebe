/**
 * Firmware download throughput (issue 11): MB/s of one device fetching one image
 * - over HTTPS from the device HTTPS port (mutual TLS, signed URL, one GET), and from the HTTP API port;
 * - over MQTT file delivery (mutual TLS on the MQTT TLS port, GetStream with bitmaps, 4 requests of up to
 *   128 KB outstanding), in JSON (base64 blocks) and CBOR (byte strings), with the agent's own downloader.
 * Run: `npx tsx bench/ota.ts [--mb 16] [--runs 3] [--block 65536]`. The platform and the client run in this
 * one process (they share one event loop and the 2 cores with everything else), so figures are a floor
 * for either side alone. Prints one line per run and a Markdown table of medians.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import mqtt from 'mqtt';
import { downloadHttps, downloadStream } from '../src/agent/index.js';
import { loadConfig } from '../src/config/index.js';
import { createPlatform } from '../src/platform/index.js';
import { arg } from './lib/common.js';

const MB = Number(arg('mb', '16'));
const RUNS = Number(arg('runs', '3'));
const BLOCK = Number(arg('block', '65536'));

const dir = mkdtempSync(join(tmpdir(), 'bench-ota-'));
const platform = await createPlatform(
  loadConfig({
    env: {},
    overrides: {
      dataDir: join(dir, 'data'),
      logLevel: 'warn',
      http: { port: 0 },
      mqtt: { tlsPort: 0, port: 'off' },
      deviceHttps: { port: 0 },
    },
  }),
);
try {
  const image = randomBytes(MB * 1024 * 1024);
  const file = await platform.ota.service.upload(Readable.from([image]), {
    name: 'bench.bin',
    version: '1.0.0',
  });
  const c = await platform.security.certificates.createKeysAndCertificate({
    setAsActive: true,
    keyType: 'ec-p256',
  });
  await platform.security.policies.createPolicy(
    'bench-ota',
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }],
    }),
  );
  await platform.security.policies.attachPolicy(
    'bench-ota',
    platform.security.certificates.certificateArn(c.certificateId),
  );
  const tls = { ca: platform.tls.caPem, cert: c.certificatePem, key: c.privateKeyPem };
  await platform.ota.service.createStream({
    streamId: 'bench',
    files: [{ fileId: 0, s3Location: { bucket: 'thingstead', key: file.sha256 } }],
  });
  const client = await mqtt.connectAsync(platform.endpoints.mqtts!, {
    clientId: 'bench-dev',
    protocolVersion: 5,
    reconnectPeriod: 0,
    ...tls,
  });
  const results: Record<string, number[]> = {};
  const record = (name: string, seconds: number) => {
    const mbps = MB / seconds;
    (results[name] ??= []).push(mbps);
    console.log(`${name.padEnd(28)} ${seconds.toFixed(2)} s  ${mbps.toFixed(1)} MB/s`);
  };
  const out = (n: string) => join(dir, n);
  for (let run = 0; run < RUNS; run++) {
    for (const [name, base] of [
      ['HTTPS (device HTTPS port)', platform.endpoints.deviceHttps!],
      ['HTTP (API port)', platform.endpoints.http],
    ] as const) {
      const target = out(`${run}-${name.length}.img`);
      const url = platform.ota.service.downloadUrl(file.sha256, 600).replace(/^https?:\/\/[^/]+/, base);
      const t0 = performance.now();
      await downloadHttps({ url, file: target, size: image.length, tls });
      record(name, (performance.now() - t0) / 1000);
      if (statSync(target).size !== image.length) throw new Error(`${name}: short download`);
      rmSync(target);
    }
    for (const format of ['json', 'cbor'] as const) {
      await client.subscribeAsync(`$aws/things/bench-dev/streams/bench/+/${format}`, { qos: 1 });
      const target = out(`${run}-${format}.img`);
      const t0 = performance.now();
      const d = downloadStream({
        client,
        thingName: 'bench-dev',
        streamId: 'bench',
        fileId: 0,
        size: image.length,
        file: target,
        format,
        blockSize: BLOCK,
      });
      const onMessage = (topic: string, payload: Buffer) => {
        const m = /\/(data|rejected)\/(json|cbor)$/.exec(topic);
        if (m && m[2] === format) d.onMessage(m[1] as 'data' | 'rejected', payload);
      };
      client.on('message', onMessage);
      await d.done;
      client.off('message', onMessage);
      await client.unsubscribeAsync(`$aws/things/bench-dev/streams/bench/+/${format}`);
      record(`MQTT stream ${format} (${BLOCK / 1024} KB blocks)`, (performance.now() - t0) / 1000);
      rmSync(target);
    }
  }
  await client.endAsync();
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  console.log(
    `\n${MB} MB image, ${RUNS} runs, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, Node ${process.version}\n`,
  );
  console.log('| transport | MB/s (median) | runs |\n| --- | --- | --- |');
  for (const [name, v] of Object.entries(results))
    console.log(`| ${name} | ${median(v).toFixed(1)} | ${v.map((x) => x.toFixed(1)).join(', ')} |`);
  writeFileSync(join(dir, 'done'), '');
} finally {
  await platform.close();
  rmSync(dir, { recursive: true, force: true });
}
