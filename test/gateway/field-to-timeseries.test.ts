import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { CreateJobCommand, DescribeJobExecutionCommand } from '@aws-sdk/client-iot';
import { parseMapping, startGateway, type Gateway } from '../../src/gateway/index.js';
import { waitFor, type TestPlatform } from '../helpers/platform.js';
import {
  admin,
  freePort,
  gatewayIdentity,
  gatewayPlatform,
  startModbusDevice,
  startOpcuaServer,
  telemetryRule,
  tempDir,
} from './helpers.js';

// Real field peers (modbus-serial's ServerTCP, node-opcua's OPCUAServer) whose values change over time, read
// by the gateway, sent over mutual TLS with its own certificate, routed by a rule into the time-series
// store and read back through the query API.

let platform: TestPlatform;
let api: Awaited<ReturnType<typeof admin>>['api'];
let iot: Awaited<ReturnType<typeof admin>>['iot'];
let shadows: Pick<Awaited<ReturnType<typeof admin>>, 'getShadow' | 'updateShadow'>;
let plc: Awaited<ReturnType<typeof startModbusDevice>>;
let opc: Awaited<ReturnType<typeof startOpcuaServer>>;
let gateway: Gateway;
let lan: mqtt.MqttClient | undefined;
const timers: NodeJS.Timeout[] = [];
const temperatures = new Set<number>();
const speeds = new Set<number>();

beforeAll(async () => {
  platform = await gatewayPlatform();
  const a = await admin(platform);
  api = a.api;
  shadows = a;
  iot = a.iot;
  const id = await gatewayIdentity(a.iot, platform, 'gw-field');
  await telemetryRule(api, 'gw_field_ts', [
    'temperature',
    'pressure',
    'running',
    'counter',
    'speed',
    'speed_signed',
    'humidity',
  ]);

  plc = await startModbusDevice(await freePort());
  let k = 0;
  const change = () => {
    const t = 20 + (k % 40) * 0.5;
    temperatures.add(t);
    plc.setFloat32LittleWords(0, t);
    plc.holding[2] = (-(k % 100) * 10) & 0xffff; // int16, negative
    plc.coils[0] = k % 2 === 0;
    plc.input[5] = k;
    k++;
  };
  change();
  timers.push(setInterval(change, 150));
  plc.holding[10] = 0x4757; // "GW"
  plc.holding[11] = 0x2d31; // "-1"

  opc = await startOpcuaServer(await freePort(), tempDir('opcua-server-pki-'));
  let s = 0;
  const spin = () => {
    opc.state.speed = 100 + (s++ % 50);
    speeds.add(opc.state.speed);
    opc.state.running = s % 3 !== 0;
  };
  spin();
  timers.push(setInterval(spin, 150));

  const mapping = parseMapping(
    JSON.stringify({
      devices: [
        {
          name: 'plc-1',
          protocol: 'modbus',
          host: '127.0.0.1',
          port: plc.port,
          pollIntervalMs: 200,
          tags: [
            { name: 'temperature', table: 'holding', address: 0, type: 'float32', wordOrder: 'little' },
            { name: 'pressure', table: 'holding', address: 2, type: 'int16', scale: 0.1 },
            { name: 'running', table: 'coil', address: 0 },
            { name: 'counter', table: 'input', address: 5, type: 'uint16' },
            {
              name: 'serial',
              table: 'holding',
              address: 10,
              type: 'string',
              length: 2,
              topic: 'things/{gateway}/meta/{device}',
            },
          ],
        },
        {
          name: 'line-2',
          protocol: 'opcua',
          endpoint: opc.endpoint,
          securityMode: 'None',
          tags: [{ name: 'speed', nodeId: 'ns=1;s=Speed', samplingIntervalMs: 100 }],
        },
        {
          name: 'line-2-secure',
          protocol: 'opcua',
          endpoint: opc.endpoint,
          securityMode: 'SignAndEncrypt',
          securityPolicy: 'Basic256Sha256',
          tags: [{ name: 'speed', measure: 'speed_signed', nodeId: 'ns=1;s=Speed', samplingIntervalMs: 100 }],
        },
        {
          name: 'lan',
          protocol: 'mqtt',
          tags: [{ name: 'humidity', subscribe: 'sensors/+/humidity', field: 'value' }],
        },
      ],
      local: {
        host: '127.0.0.1',
        port: 0,
        users: [{ username: 'sensor', password: 'sensor-secret', publish: ['sensors/#'] }],
      },
    }),
    'test-mapping.json',
  );
  gateway = await startGateway({
    thingName: id.thingName,
    mqttUrl: platform.endpoints.mqtts!,
    ca: platform.tls.caPem,
    cert: id.certPem,
    key: id.keyPem,
    mapping,
    dataDir: tempDir('gw-field-'),
    opcuaTrustUnknownServers: true,
    healthIntervalMs: 2000,
    jobs: { trustedKeys: [], installCommand: 'true' },
  });
}, 120_000);

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  await lan?.endAsync();
  await gateway?.close();
  await plc?.close();
  await opc?.close();
  await platform?.stop();
}, 60_000);

const points = async (thing: string, metric: string) =>
  (await api('GET', '/timeseries/query', { query: { metric, thing, from: '-10m', to: 'now' } }))
    .points as Array<{
    ts: number;
    value: number | string;
  }>;

describe('gateway: field devices to the time-series store', () => {
  it('reads Modbus holding and input registers and coils, decoded and scaled, into the store', async () => {
    const temps = await waitFor(
      async () => {
        const p = await points('plc-1', 'temperature');
        return new Set(p.map((x) => x.value)).size >= 5 ? p : null;
      },
      30_000,
      'five different temperatures stored',
    );
    // float32 with the low word first decodes to exactly the values the device holds
    for (const t of temps) expect(temperatures.has(t.value as number)).toBe(true);
    const pressure = await points('plc-1', 'pressure');
    expect(pressure.length).toBeGreaterThan(0);
    for (const p of pressure) {
      expect(p.value as number).toBeLessThanOrEqual(0);
      expect(Math.abs(Math.round((p.value as number) * 10)) % 10).toBe(0); // -k*10 scaled by 0.1
    }
    const running = await points('plc-1', 'running');
    expect(new Set(running.map((p) => p.value))).toEqual(new Set([0, 1])); // booleans stored as 0/1
    const counter = await points('plc-1', 'counter');
    expect(counter.map((p) => p.value as number)).toEqual(
      [...counter.map((p) => p.value as number)].sort((a, b) => a - b),
    );
  });

  it('reads OPC UA subscriptions (security None and SignAndEncrypt) into the store', async () => {
    for (const metric of ['speed', 'speed_signed']) {
      const thing = metric === 'speed' ? 'line-2' : 'line-2-secure';
      const got = await waitFor(
        async () => {
          const p = await points(thing, metric);
          return new Set(p.map((x) => x.value)).size >= 5 ? p : null;
        },
        60_000,
        `five different ${metric} values stored`,
      );
      for (const p of got) expect(speeds.has(p.value as number)).toBe(true);
    }
  });

  it('takes readings from LAN devices on the embedded broker, with its own users', async () => {
    const url = `mqtt://127.0.0.1:${gateway.localPort}`;
    await expect(
      mqtt.connectAsync(url, {
        username: 'sensor',
        password: 'wrong-password',
        reconnectPeriod: 0,
        protocolVersion: 5,
      }),
    ).rejects.toThrow(/Bad User Name or Password|bad user name/i);
    lan = await mqtt.connectAsync(url, {
      username: 'sensor',
      password: 'sensor-secret',
      reconnectPeriod: 0,
      protocolVersion: 5,
    });
    // outside its publish filters: refused by the local policy
    const refused = await lan.publishAsync('other/topic', '1', { qos: 1 }).then(
      (p) => (p as { reasonCode?: number } | undefined)?.reasonCode,
      (e: { code?: number }) => e.code,
    );
    expect(refused).toBe(0x87);
    for (const v of [41.5, 42.5, 43.5])
      await lan.publishAsync('sensors/room-1/humidity', JSON.stringify({ value: v }), { qos: 1 });
    await lan.publishAsync('sensors/room-1/humidity', 'not json', { qos: 1 });
    const got = await waitFor(
      async () => {
        const p = await points('lan', 'humidity');
        return p.length >= 3 ? p : null;
      },
      20_000,
      'LAN humidity stored',
    );
    expect(got.map((p) => p.value)).toEqual([41.5, 42.5, 43.5]);
    expect(gateway.drivers.find((d) => d.device === 'lan')!.health().errors).toBe(1); // the unusable payload
  });

  it('reports its health in its shadow', async () => {
    const doc = await waitFor(
      async () => {
        const s = await shadows.getShadow('gw-field');
        const h = s?.state?.reported?.health;
        return h?.devices?.['plc-1']?.state === 'up' && h?.devices?.['line-2']?.state === 'up' ? h : null;
      },
      30_000,
      'health in the shadow',
    );
    expect(doc.status).toBe('ok');
    expect(doc.queue.dropped).toEqual({ queue_full: 0, expired: 0, too_large: 0, corrupt: 0 });
    expect(doc.devices['line-2-secure'].protocol).toBe('opcua');
    const stats = gateway.stats();
    expect(stats.upstream.refused).toEqual({});
    expect(stats.queue.dropped.queue_full).toBe(0);
  });

  it('takes configuration from its shadow: a poll interval and disabling a device', async () => {
    await shadows.updateShadow('gw-field', {
      state: {
        desired: {
          config: {
            devices: {
              'plc-1': { pollIntervalMs: 1000 },
              'line-2': { enabled: false },
              nope: { enabled: true },
            },
          },
        },
      },
    });
    const reported = await waitFor(
      async () => {
        const s = await shadows.getShadow('gw-field');
        return s?.state.reported?.config?.devices?.['line-2']?.enabled === false ? s.state.reported : null;
      },
      20_000,
      'configuration reported back',
    );
    expect(reported.config.devices['plc-1']).toEqual({ pollIntervalMs: 1000 });
    expect(reported.configErrors).toEqual(['devices.nope: no such field device in the mapping']);
    expect(gateway.drivers.find((d) => d.device === 'line-2')!.health().state).toBe('disabled');
    // a slower poll: about one read a second now
    const before = gateway.drivers.find((d) => d.device === 'plc-1')!.health().reads;
    await new Promise((r) => setTimeout(r, 3000));
    const reads = gateway.drivers.find((d) => d.device === 'plc-1')!.health().reads - before;
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(reads).toBeLessThanOrEqual(5);
  });

  it('runs jobs through the device agent on its own uplink (a document it cannot run is REJECTED)', async () => {
    const thingArn = `arn:aws:iot:${platform.config.region}:${platform.config.accountId}:thing/gw-field`;
    await iot.send(
      new CreateJobCommand({
        jobId: 'gw-field-job',
        targets: [thingArn],
        document: '{"operation":"reboot"}',
      }),
    );
    const execution = await waitFor(
      async () => {
        const r = await iot.send(
          new DescribeJobExecutionCommand({ jobId: 'gw-field-job', thingName: 'gw-field' }),
        );
        return r.execution?.status === 'REJECTED' ? r.execution : null;
      },
      30_000,
      'the gateway to answer the job',
    );
    expect(execution.statusDetails?.detailsMap?.failure).toBe('UNSUPPORTED');
    // the readings kept flowing on the same connection meanwhile
    expect(gateway.stats().upstream.connects).toBe(1);
  });
});
