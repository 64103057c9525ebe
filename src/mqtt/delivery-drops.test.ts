/**
 * A delivery that is not sent is counted once, with its reason: encode_failed when the codec cannot encode
 * it for a receiver, packet_too_large when it exceeds the receiver's Maximum Packet Size [MQTT-3.1.2-25].
 * Drives the core directly over an in-memory stream (broker.publish refuses such properties up front).
 */
import { Duplex } from 'node:stream';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { createLogger, createMetricsRegistry } from '../observability/index.js';
import { Core } from './core.js';
import { Connection } from './connection.js';
import { anonymousLoopbackHooks } from './hooks.js';
import { createBrokerMetrics } from './metrics.js';
import type { MqttStore } from './store.js';
import type { PublishProperties } from './types.js';

const memoryStore: MqttStore = {
  init: async () => undefined,
  loadSessions: async () => [],
  loadRetained: async () => [],
  apply: async () => undefined,
};

/** Two connected in-memory streams: what one writes, the other reads. */
function pair(): [Duplex, Duplex] {
  const a: Duplex = new Duplex({ read() {}, write: (c: Buffer, _e, cb) => (b.push(c), cb()) });
  const b: Duplex = new Duplex({ read() {}, write: (c: Buffer, _e, cb) => (a.push(c), cb()) });
  return [a, b];
}

describe('undelivered PUBLISHes are counted once, by reason', () => {
  it('encode_failed only (not also packet_too_large); oversize only packet_too_large', async () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: '/nonexistent-unused' } });
    const metrics = createBrokerMetrics(createMetricsRegistry({ processMetrics: false }), () => ({
      sessions: 0,
      retained: 0,
      retainedBytes: 0,
      queued: 0,
      inflight: 0,
      storePending: 0,
    }));
    const core = new Core(config, anonymousLoopbackHooks(true), metrics, createLogger('silent'), memoryStore);
    await core.load();
    const [server, client] = pair();
    const conn = new Connection(core, server, {
      transport: 'tcp',
      remoteAddress: '127.0.0.1',
      remotePort: 1,
      localPort: 1,
    });
    core.connections.add(conn);
    const got: Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    parser.on('packet', (p: Packet) => got.push(p));
    client.on('data', (d: Buffer) => parser.parse(d));
    const send = (p: Packet) => client.write(mqttPacket.generate(p, { protocolVersion: 5 }));
    const until = async (cmd: string) => {
      for (let i = 0; i < 200 && !got.some((p) => p.cmd === cmd); i++)
        await new Promise((r) => setTimeout(r, 5));
      expect(got.map((p) => p.cmd)).toContain(cmd);
    };
    send({
      cmd: 'connect',
      protocolVersion: 5,
      clientId: 'rx',
      clean: true,
      keepalive: 0,
      properties: { maximumPacketSize: 200 },
    });
    await until('connack');
    send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'd/#', qos: 1 }] });
    await until('suback');

    const n = (reason: 'encode_failed' | 'packet_too_large') =>
      (metrics.dropped[reason] as unknown as { n: number }).n;
    const route = (payload: Buffer, qos: 0 | 1, properties?: PublishProperties) =>
      core.route({
        topic: 'd/x',
        payload,
        qos,
        retain: false,
        properties,
        expiresAt: null,
        origin: null,
        publisher: null,
        ingress: 0,
      });
    const bad = { contentType: 42 } as unknown as PublishProperties;
    route(Buffer.from('a'), 0, bad);
    route(Buffer.from('b'), 1, bad);
    expect([n('encode_failed'), n('packet_too_large')]).toEqual([2, 0]);
    route(Buffer.alloc(500), 0);
    route(Buffer.alloc(500), 1);
    expect([n('encode_failed'), n('packet_too_large')]).toEqual([2, 2]);
    route(Buffer.from('ok'), 1);
    await until('publish');
    expect(got.filter((p) => p.cmd === 'publish')).toHaveLength(1);
    await core.close();
  });
});
