/**
 * Test rig for the gateway: a platform with the gateway's thing, certificate and policy made through the AWS
 * SDK, a rule routing gateway telemetry into the time-series store, and real field peers (modbus-serial's
 * ServerTCP, node-opcua's OPCUAServer) whose values change over time.
 */
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  CreateKeysAndCertificateCommand,
  CreatePolicyCommand,
  CreateThingCommand,
  IoTClient,
} from '@aws-sdk/client-iot';
import {
  GetThingShadowCommand,
  IoTDataPlaneClient,
  UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane';
import { signedFetch } from '../../src/api/index.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';

export interface GatewayIdentity {
  readonly thingName: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A port nobody listens on right now (for peers that cannot bind port 0, and for restarts on one port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A platform with mutual TLS only (no anonymous access), on the given ports when restarting. */
export async function gatewayPlatform(
  options: {
    dataDir?: string;
    tlsPort?: number;
    httpPort?: number;
    /** Metering settings (quota tests pin `burstSeconds`). */
    metering?: { burstSeconds?: number };
  } = {},
): Promise<TestPlatform> {
  return startTestPlatform(
    {
      mqtt: { allowAnonymous: false, port: null, tlsPort: options.tlsPort ?? 0 },
      http: { port: options.httpPort ?? 0 },
      ...(options.metering ? { metering: options.metering } : {}),
    },
    options.dataDir ? { dataDir: options.dataDir } : {},
  );
}

/** Admin SDK client and SigV4 fetch for a platform. */
export async function admin(platform: TestPlatform) {
  const key = await platform.credentials.create(`gw-admin-${Date.now()}`, 'admin');
  const creds = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  const iot = new IoTClient({
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: creds,
    maxAttempts: 1,
  });
  const api = (method: string, path: string, req: Parameters<typeof signedFetch>[3] = {}) =>
    signedFetch(
      { endpoint: platform.endpoints.http, region: platform.config.region, ...creds },
      method,
      path,
      req,
    );
  const data = new IoTDataPlaneClient({
    endpoint: platform.endpoints.http,
    region: platform.config.region,
    credentials: creds,
    maxAttempts: 1,
  });
  /** The thing's classic shadow document, or null when it has none. */
  const getShadow = async (thingName: string): Promise<any> => {
    const r = await data.send(new GetThingShadowCommand({ thingName })).catch((e: { name?: string }) => {
      if (e.name === 'ResourceNotFoundException') return null;
      throw e;
    });
    return r?.payload ? JSON.parse(Buffer.from(r.payload).toString('utf8')) : null;
  };
  const updateShadow = async (thingName: string, doc: unknown) =>
    data.send(new UpdateThingShadowCommand({ thingName, payload: Buffer.from(JSON.stringify(doc)) }));
  return { iot, api, getShadow, updateShadow };
}

/**
 * The gateway's thing, an ACTIVE certificate and a least-privilege gateway policy (its client id, its
 * `things/<gw>/*` topics, its shadow and jobs), made with the AWS SDK as an operator would.
 */
export async function gatewayIdentity(
  iot: IoTClient,
  platform: TestPlatform,
  thingName: string,
): Promise<GatewayIdentity> {
  const account = `arn:aws:iot:${platform.config.region}:${platform.config.accountId}`;
  await iot.send(new CreateThingCommand({ thingName }));
  const cert = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }));
  const policyName = `${thingName}-gateway`;
  await iot.send(
    new CreatePolicyCommand({
      policyName,
      policyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'iot:Connect',
            Resource: `${account}:client/\${iot:Connection.Thing.ThingName}`,
          },
          {
            Effect: 'Allow',
            Action: ['iot:Publish', 'iot:Receive'],
            Resource: [
              `${account}:topic/things/\${iot:Connection.Thing.ThingName}/*`,
              `${account}:topic/$aws/things/\${iot:Connection.Thing.ThingName}/*`,
            ],
          },
          {
            Effect: 'Allow',
            Action: 'iot:Subscribe',
            Resource: [`${account}:topicfilter/$aws/things/\${iot:Connection.Thing.ThingName}/*`],
          },
        ],
      }),
    }),
  );
  await iot.send(new AttachPolicyCommand({ policyName, target: cert.certificateArn! }));
  await iot.send(new AttachThingPrincipalCommand({ thingName, principal: cert.certificateArn! }));
  return { thingName, certPem: cert.certificatePem!, keyPem: cert.keyPair!.PrivateKey! };
}

/**
 * The rule that stores gateway telemetry: one point per measure, the thing being the field device, the
 * time the reading's. `seq` is stored as a measure too, so a test can check every record arrived once.
 */
export async function telemetryRule(
  api: Awaited<ReturnType<typeof admin>>['api'],
  ruleName: string,
  measures: readonly string[],
): Promise<void> {
  await api('POST', `/rules/${ruleName}`, {
    body: {
      sql: `SELECT seq, ${measures.join(', ')} FROM 'things/+/field/+'`,
      awsIotSqlVersion: '2016-03-23',
      actions: [{ timeseries: { thingName: '${device}', timestamp: '${ts}' } }],
    },
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A Modbus TCP device (modbus-serial's ServerTCP) backed by plain arrays the test changes. */
export async function startModbusDevice(port: number) {
  const { ServerTCP } = (await import('modbus-serial')).default as unknown as {
    ServerTCP: new (
      vector: object,
      options: object,
    ) => {
      close(cb: (err: Error | null) => void): void;
      on(e: string, f: (...a: unknown[]) => void): void;
      socks: Map<{ destroy(): void }, number>;
    };
  };
  const holding = new Array<number>(200).fill(0);
  const input = new Array<number>(200).fill(0);
  const coils = new Array<boolean>(200).fill(false);
  const discrete = new Array<boolean>(200).fill(false);
  let requests = 0;
  const vector = {
    getHoldingRegister: (addr: number) => (requests++, holding[addr] ?? 0),
    getInputRegister: (addr: number) => (requests++, input[addr] ?? 0),
    getCoil: (addr: number) => (requests++, coils[addr] ?? false),
    getDiscreteInput: (addr: number) => (requests++, discrete[addr] ?? false),
    setRegister: (addr: number, value: number) => void (holding[addr] = value),
    setCoil: (addr: number, value: boolean) => void (coils[addr] = value),
  };
  const server = new ServerTCP(vector, { host: '127.0.0.1', port, unitID: 1 });
  await new Promise<void>((resolve, reject) => {
    server.on('initialized', () => resolve());
    server.on('serverError', (e) => reject(e instanceof Error ? e : new Error(String(e))));
  });
  server.on('socketError', () => undefined);
  return {
    port,
    holding,
    input,
    coils,
    discrete,
    requests: () => requests,
    /** Write a float32 into two registers, the least significant word first (word order little). */
    setFloat32LittleWords(addr: number, value: number) {
      const b = Buffer.alloc(4);
      b.writeFloatBE(value);
      holding[addr] = b.readUInt16BE(2);
      holding[addr + 1] = b.readUInt16BE(0);
    },
    async close() {
      for (const sock of server.socks.keys()) sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An OPC UA server (node-opcua) with Speed (Double) and Running (Boolean) under Objects. */
export async function startOpcuaServer(port: number, pkiDir: string) {
  const ua = await import('node-opcua');
  const serverCertificateManager = new ua.OPCUACertificateManager({
    rootFolder: pkiDir,
    automaticallyAcceptUnknownCertificate: true,
  });
  await serverCertificateManager.initialize();
  const server = new ua.OPCUAServer({
    port,
    hostname: '127.0.0.1',
    resourcePath: '/UA/Test',
    serverCertificateManager,
    securityModes: [
      ua.MessageSecurityMode.None,
      ua.MessageSecurityMode.Sign,
      ua.MessageSecurityMode.SignAndEncrypt,
    ],
    securityPolicies: [ua.SecurityPolicy.None, ua.SecurityPolicy.Basic256Sha256],
    allowAnonymous: true,
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace!;
  const ns = addressSpace.getOwnNamespace();
  const state = { speed: 0, running: false };
  ns.addVariable({
    organizedBy: addressSpace.rootFolder.objects,
    minimumSamplingInterval: 50,
    browseName: 'Speed',
    nodeId: 's=Speed',
    dataType: 'Double',
    value: { get: () => new ua.Variant({ dataType: ua.DataType.Double, value: state.speed }) },
  });
  ns.addVariable({
    organizedBy: addressSpace.rootFolder.objects,
    minimumSamplingInterval: 50,
    browseName: 'Running',
    nodeId: 's=Running',
    dataType: 'Boolean',
    value: { get: () => new ua.Variant({ dataType: ua.DataType.Boolean, value: state.running }) },
  });
  await server.start();
  return {
    endpoint: `opc.tcp://127.0.0.1:${port}/UA/Test`,
    state,
    async close() {
      await server.shutdown(0);
    },
  };
}
