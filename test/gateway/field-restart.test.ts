import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMapping, startGateway, type Gateway } from '../../src/gateway/index.js';
import { waitFor, type TestPlatform } from '../helpers/platform.js';
import {
  admin,
  freePort,
  gatewayIdentity,
  gatewayPlatform,
  startModbusDevice,
  startOpcuaServer,
  tempDir,
} from './helpers.js';

// A field device that restarts (its server process goes away and comes back on the same port) is read again
// within 30 s without operator action, and while it is down the other devices keep being read. Both a
// Modbus TCP device and an OPC UA server (a new server instance: new sessions, new subscriptions).

let platform: TestPlatform;
let gateway: Gateway;
let plcPort: number;
let opcPort: number;
let opcPki: string;
let plc: Awaited<ReturnType<typeof startModbusDevice>>;
let other: Awaited<ReturnType<typeof startModbusDevice>>;
let opc: Awaited<ReturnType<typeof startOpcuaServer>>;
const ticker = setInterval(() => {
  if (opc) opc.state.speed += 1;
}, 100);

beforeAll(async () => {
  platform = await gatewayPlatform();
  const a = await admin(platform);
  const id = await gatewayIdentity(a.iot, platform, 'gw-restart');
  plcPort = await freePort();
  opcPort = await freePort();
  opcPki = tempDir('opcua-restart-pki-');
  plc = await startModbusDevice(plcPort);
  other = await startModbusDevice(await freePort());
  opc = await startOpcuaServer(opcPort, opcPki);
  const mapping = parseMapping(
    JSON.stringify({
      devices: [
        {
          name: 'plc-a',
          protocol: 'modbus',
          host: '127.0.0.1',
          port: plcPort,
          pollIntervalMs: 200,
          tags: [{ name: 'v', table: 'holding', address: 0 }],
        },
        {
          name: 'plc-b',
          protocol: 'modbus',
          host: '127.0.0.1',
          port: other.port,
          pollIntervalMs: 200,
          tags: [{ name: 'v', table: 'holding', address: 0 }],
        },
        {
          name: 'ua',
          protocol: 'opcua',
          endpoint: opc.endpoint,
          tags: [{ name: 'speed', nodeId: 'ns=1;s=Speed', samplingIntervalMs: 100 }],
        },
      ],
    }),
  );
  gateway = await startGateway({
    thingName: id.thingName,
    mqttUrl: platform.endpoints.mqtts!,
    ca: platform.tls.caPem,
    cert: id.certPem,
    key: id.keyPem,
    mapping,
    dataDir: tempDir('gw-restart-'),
  });
  await waitFor(() => gateway.stats().devices.every((d) => d.state === 'up'), 60_000, 'every device up');
}, 120_000);

afterAll(async () => {
  clearInterval(ticker);
  await gateway?.close();
  await plc?.close();
  await other?.close();
  await opc?.close();
  await platform?.stop();
}, 60_000);

const device = (name: string) => gateway.stats().devices.find((d) => d.device === name)!;

describe('gateway: field device restarts', () => {
  it('recovers a restarted Modbus device within 30 s, the other device read all along', async () => {
    await plc.close();
    await waitFor(() => device('plc-a').state === 'down', 10_000, 'plc-a marked down');
    expect(device('plc-a').lastError).toMatch(/127\.0\.0\.1:\d+/);
    const otherReads = device('plc-b').reads;
    await new Promise((r) => setTimeout(r, 5000)); // down for a while: the backoff grows
    expect(device('plc-b').reads).toBeGreaterThan(otherReads + 10); // never stopped by plc-a
    plc = await startModbusDevice(plcPort);
    const back = Date.now();
    const reads = device('plc-a').reads;
    await waitFor(
      () => device('plc-a').state === 'up' && device('plc-a').reads > reads,
      30_000,
      'plc-a read again',
    );
    const took = Date.now() - back;
    console.log(`Modbus device read again ${took} ms after it came back`);
    expect(took).toBeLessThan(30_000);
    expect(device('plc-a').failures).toBe(0);
  }, 60_000);

  it('recovers a restarted OPC UA server (new sessions and subscriptions) within 30 s', async () => {
    await opc.close();
    await waitFor(() => device('ua').state === 'down', 30_000, 'ua marked down');
    await new Promise((r) => setTimeout(r, 3000));
    opc = await startOpcuaServer(opcPort, opcPki);
    const back = Date.now();
    const reads = device('ua').reads;
    await waitFor(
      () => device('ua').state === 'up' && device('ua').reads > reads + 2,
      30_000,
      'ua read again',
    );
    const took = Date.now() - back;
    console.log(`OPC UA server read again ${took} ms after it came back`);
    expect(took).toBeLessThan(30_000);
  }, 90_000);
});
