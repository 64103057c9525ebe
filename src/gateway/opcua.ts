/**
 * The OPC UA driver (node-opcua client): one session per device, one subscription with a monitored item per
 * tag (its node id and sampling interval), security mode None, Sign or SignAndEncrypt.
 *
 * Contract:
 * - A data change of a tag is one reading (its source timestamp when the server gives one, else now).
 *   Values that are not numbers, booleans or text (arrays, structures) are counted and skipped.
 * - Reconnect is ours, not the library's: when the connection, the session or the subscription is lost (the
 *   server restarted, the network went), everything is torn down and built again on the backoff schedule
 *   (driver.ts), so a restarted server with a new session space comes back without operator action.
 * - Certificates (Sign, SignAndEncrypt): the gateway's own application certificate is made on first use
 *   under `pkiDir`. A server certificate is accepted only when it is in `pkiDir/trusted/certs`, unless
 *   `trustUnknownServers` is set (trust on first use); a refused one lands in `pkiDir/rejected` for the
 *   operator to move into `trusted`.
 * - node-opcua is loaded only when an OPC UA device is configured (it is large).
 */
import type { ClientSession, ClientSubscription, DataValue, OPCUAClient } from 'node-opcua';
import {
  Backoff,
  HealthTracker,
  scaled,
  type BackoffOptions,
  type DeviceHealth,
  type FieldDriver,
  type ReadingsHandler,
} from './driver.js';
import { renderTopic, type OpcuaDevice, type OpcuaTag } from './mapping.js';

export interface OpcuaDriverOptions {
  readonly device: OpcuaDevice;
  readonly gateway: string;
  readonly onReadings: ReadingsHandler;
  readonly onHealth: (h: DeviceHealth) => void;
  /** The client's PKI folder (own certificate, trusted and rejected server certificates). */
  readonly pkiDir: string;
  readonly trustUnknownServers?: boolean;
  readonly backoff?: BackoffOptions;
}

export function createOpcuaDriver(options: OpcuaDriverOptions): FieldDriver {
  const { device } = options;
  const health = new HealthTracker(device.name, 'opcua', options.onHealth);
  const backoff = new Backoff(options.backoff);
  const topics = new Map(
    device.tags.map((t) => [
      t,
      renderTopic(t.topic, { gateway: options.gateway, device: device.name, tag: t.name }),
    ]),
  );
  let client: OPCUAClient | null = null;
  let session: ClientSession | null = null;
  let subscription: ClientSubscription | null = null;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let enabled = true;
  let generation = 0;
  let samplingOverride: number | null = null;
  let skipped = 0;

  async function teardown(): Promise<void> {
    const c = client;
    const s = session;
    const sub = subscription;
    client = null;
    session = null;
    subscription = null;
    await sub?.terminate().catch(() => undefined);
    await s?.close().catch(() => undefined);
    await c?.disconnect().catch(() => undefined);
  }

  const lost = (gen: number, why: string) => {
    if (gen !== generation || closed || !enabled) return;
    generation++;
    const delay = backoff.next();
    health.fail(`${why} (${device.endpoint})`, Date.now() + delay);
    void teardown().finally(() => schedule(delay));
  };

  const schedule = (delay: number) => {
    if (closed || !enabled) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void connect(), delay);
  };

  function onChange(tag: OpcuaTag, dataValue: DataValue): void {
    const v = dataValue.value?.value as unknown;
    if (
      !dataValue.statusCode.isGood() ||
      !(typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string')
    ) {
      skipped++;
      return;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return;
    const ts = dataValue.sourceTimestamp?.getTime() ?? Date.now();
    health.ok(ts);
    options.onReadings(device.name, ts, [
      {
        tag: tag.name,
        measure: tag.measure,
        topic: topics.get(tag)!,
        value: scaled(v, tag.scale, tag.offset),
      },
    ]);
  }

  async function connect(): Promise<void> {
    timer = null;
    if (closed || !enabled) return;
    const gen = ++generation;
    try {
      const ua = await import('node-opcua');
      const certificateManager = new ua.OPCUACertificateManager({
        rootFolder: options.pkiDir,
        automaticallyAcceptUnknownCertificate: options.trustUnknownServers === true,
      });
      await certificateManager.initialize();
      const c = ua.OPCUAClient.create({
        applicationName: `thingstead-gateway-${options.gateway}`,
        securityMode: ua.MessageSecurityMode[device.securityMode],
        securityPolicy: ua.SecurityPolicy[device.securityPolicy],
        endpointMustExist: false,
        clientCertificateManager: certificateManager,
        // One attempt: our backoff schedules the next (see the contract above).
        connectionStrategy: { maxRetry: 0, initialDelay: 500, maxDelay: 1000 },
        keepSessionAlive: true,
        requestedSessionTimeout: 60_000,
      });
      client = c;
      c.on('connection_lost', () => lost(gen, 'connection lost'));
      c.on('close', () => lost(gen, 'connection closed'));
      c.on('start_reconnection', () => lost(gen, 'connection lost'));
      await c.connect(device.endpoint);
      const s = await c.createSession(
        device.username !== null
          ? { type: ua.UserTokenType.UserName, userName: device.username, password: device.password ?? '' }
          : undefined,
      );
      session = s;
      s.on('session_closed', () => lost(gen, 'session closed'));
      s.on('keepalive_failure', () => lost(gen, 'session keep-alive failed'));
      const sub = await s.createSubscription2({
        requestedPublishingInterval: device.publishingIntervalMs,
        requestedLifetimeCount: 600,
        requestedMaxKeepAliveCount: 10,
        maxNotificationsPerPublish: 10_000,
        publishingEnabled: true,
        priority: 1,
      });
      subscription = sub;
      sub.on('terminated', () => lost(gen, 'subscription terminated'));
      for (const tag of device.tags) {
        const item = await sub.monitor(
          { nodeId: tag.nodeId, attributeId: ua.AttributeIds.Value },
          {
            samplingInterval: samplingOverride ?? tag.samplingIntervalMs,
            discardOldest: true,
            queueSize: 100,
          },
          ua.TimestampsToReturn.Both,
        );
        item.on('changed', (dv: DataValue) => onChange(tag, dv));
        item.on('err', (message: string) => health.fail(`tag ${tag.name} (${tag.nodeId}): ${message}`, null));
      }
      if (gen !== generation) return;
      backoff.reset();
      health.set('up');
    } catch (err) {
      lost(gen, `${(err as Error).message.split('\n')[0]}`);
    }
  }

  return {
    device: device.name,
    start: () => schedule(0),
    health: () => ({ ...health.snapshot(), errors: health.errors + skipped }),
    setInterval(ms: number) {
      // Sampling intervals are set when monitoring starts: rebuild the subscription with the new one.
      samplingOverride = ms;
      if (client) lost(generation, 'sampling interval changed: resubscribing');
      return true;
    },
    setEnabled(on: boolean) {
      if (on === enabled) return;
      enabled = on;
      generation++;
      if (!on) {
        if (timer) clearTimeout(timer);
        void teardown();
        health.set('disabled');
      } else {
        health.set('connecting');
        schedule(0);
      }
    },
    async close() {
      closed = true;
      generation++;
      if (timer) clearTimeout(timer);
      await teardown();
    },
  };
}
