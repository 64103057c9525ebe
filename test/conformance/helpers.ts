/**
 * Helpers for the MQTT conformance suite: real MQTT.js clients against an in-process platform.
 */
import mqtt, { type IClientOptions, type MqttClient, type IPublishPacket } from 'mqtt';
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { TestPlatform } from '../helpers/platform.js';
import { waitFor } from '../helpers/platform.js';

export { waitFor };

let seq = 0;
export const uniqueId = (prefix = 'c') =>
  `${prefix}-${process.pid}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

export type Transport = 'tcp' | 'tls' | 'ws';

/** Connect an MQTT.js client (no auto-reconnect). Defaults: MQTT 5, clean start, fresh client id. */
export async function connect(
  platform: TestPlatform,
  opts: IClientOptions & { transport?: Transport } = {},
): Promise<MqttClient> {
  const { transport = 'tcp', ...rest } = opts;
  const url =
    transport === 'tcp'
      ? platform.endpoints.mqtt!
      : transport === 'tls'
        ? platform.endpoints.mqtts!
        : platform.endpoints.ws;
  return mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId: uniqueId(),
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...(transport === 'tls'
      ? { ca: platform.tls.caPem, servername: 'localhost', rejectUnauthorized: true }
      : {}),
    ...rest,
  });
}

/**
 * Create a client without connecting, so listeners ('connect' for sessionPresent, 'message') can be
 * attached before the CONNACK and queued messages arrive. Call `client.connect()`.
 */
export function prepare(platform: TestPlatform, opts: IClientOptions = {}): MqttClient {
  return mqtt.connect(platform.endpoints.mqtt!, {
    protocolVersion: 5,
    clientId: uniqueId(),
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
    manualConnect: true,
  });
}

export interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Record every message a client receives. */
export function collect(client: MqttClient): Received[] {
  const got: Received[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), packet }));
  return got;
}

export async function end(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(
    clients.map(async (c) => {
      if (c) await c.endAsync(true).catch(() => undefined);
    }),
  );
}

/** Read a counter/gauge value from the platform's registry (sum over matching label sets). */
export async function metric(
  platform: TestPlatform,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = platform.metrics.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  let total = 0;
  for (const v of data.values) {
    if (
      Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val)
    ) {
      if (!('metricName' in v) || v.metricName === name || v.metricName === undefined) total += v.value;
    }
  }
  return total;
}

/** A raw TCP MQTT client for protocol-level tests (malformed packets, never reading, ...). */
export class RawClient {
  readonly socket: Socket;
  readonly packets: Packet[] = [];
  closed = false;
  private readonly parser: ReturnType<typeof mqttPacket.parser>;

  private constructor(socket: Socket, version: 4 | 5) {
    this.socket = socket;
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (p: Packet) => this.packets.push(p));
    this.parser.on('error', () => undefined);
    socket.on('data', (d) => this.parser.parse(d));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async open(platform: TestPlatform, version: 4 | 5 = 4): Promise<RawClient> {
    const socket = netConnect({ host: '127.0.0.1', port: platform.endpoints.mqttPort! });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket, version);
  }

  send(packet: Packet, version: 4 | 5 = 4): void {
    this.socket.write(mqttPacket.generate(packet, { protocolVersion: version }));
  }

  write(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  async next(cmd: Packet['cmd'], timeoutMs = 3000): Promise<Packet> {
    return waitFor(() => this.packets.find((p) => p.cmd === cmd), timeoutMs, `a ${cmd} packet`);
  }

  async waitClosed(timeoutMs = 3000): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, 'the connection to close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
