/**
 * The LAN listener: Thingstead's own broker core (src/mqtt) embedded in the gateway, for field devices that
 * speak MQTT. Its policies are its own: the users of the mapping's `local` section, each with the topic
 * filters it may publish to and subscribe to; there is no anonymous access. Messages on a mapped tag's
 * `subscribe` filter become readings, which the gateway queues and forwards like any other.
 *
 * Contract: usernames and passwords are compared in constant time; a refused CONNECT gets 0x86 (bad user
 * name or password), a refused PUBLISH or SUBSCRIBE the broker's own not-authorized answers. A payload that
 * holds no usable value for its tag (not JSON, the field missing, not a number/boolean/text) is counted
 * (`skipped`) and dropped, never forwarded half-understood.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { loadConfig } from '../config/index.js';
import { createBroker, topicMatches, type AuthHooks, type Broker } from '../mqtt/index.js';
import { createLogger, createMetricsRegistry, type Logger } from '../observability/index.js';
import { openDatabase, type Database } from '../store/index.js';
import {
  HealthTracker,
  scaled,
  type DeviceHealth,
  type FieldDriver,
  type ReadingsHandler,
} from './driver.js';
import { renderTopic, type LocalListener, type LocalUser, type MqttDevice, type MqttTag } from './mapping.js';

const BAD_USER_OR_PASSWORD = 0x86;

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The embedded broker's authentication and authorization, from the mapping's `local.users`. */
export function localHooks(users: readonly LocalUser[]): AuthHooks {
  const byName = new Map(users.map((u) => [u.username, { user: u, password: digest(u.password) }]));
  const userOf = (id: string) => byName.get(id)?.user;
  const covers = (filters: readonly string[], topic: string) => filters.some((f) => topicMatches(f, topic));
  return {
    authenticate(req) {
      const entry = req.username !== undefined ? byName.get(req.username) : undefined;
      const given = digest(req.password?.toString('utf8') ?? '');
      // Compare digests in constant time, also for unknown users (no timing hint about which names exist).
      const ok = timingSafeEqual(given, entry?.password ?? digest('\0no-such-user')) && entry !== undefined;
      if (!ok)
        return {
          ok: false,
          reasonCode: BAD_USER_OR_PASSWORD,
          reason: 'bad user name or password for the gateway LAN listener',
        };
      return { ok: true, principal: { kind: 'accessKey', id: entry.user.username } };
    },
    authorizeConnection: () => true,
    authorizePublish: (s, topic) => covers(userOf(s.principal.id)?.publish ?? [], topic),
    authorizeRetain: (s, topic) => covers(userOf(s.principal.id)?.publish ?? [], topic),
    // A filter is allowed when it is one of the user's filters or lies inside one (a/b/+ inside a/#).
    authorizeSubscribe: (s, filter) =>
      (userOf(s.principal.id)?.subscribe ?? []).some((f) => f === filter || topicMatches(f, filter)),
    authorizeReceive: (s, topic) => covers(userOf(s.principal.id)?.subscribe ?? [], topic),
  };
}

/** A value for a tag from a LAN payload, or undefined when it holds none. */
export function valueOf(tag: Pick<MqttTag, 'field'>, payload: Buffer): number | string | boolean | undefined {
  const text = payload.toString('utf8').trim();
  if (tag.field === null) {
    if (text === '') return undefined;
    const n = Number(text);
    if (Number.isFinite(n)) return n;
    if (text === 'true' || text === 'false') return text === 'true';
    return text.length <= 1024 ? text : undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  for (const part of tag.field.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  return undefined;
}

export interface LocalBroker {
  /** The port bound (useful with port 0). */
  readonly port: number;
  readonly broker: Broker;
  /** One driver per `mqtt` device of the mapping, fed by the broker's internal subscriptions. */
  readonly drivers: readonly FieldDriver[];
  close(): Promise<void>;
}

export interface LocalBrokerOptions {
  readonly listener: LocalListener;
  readonly devices: readonly MqttDevice[];
  readonly gateway: string;
  /** Sessions and retained messages of the LAN broker (SQLite). */
  readonly dataDir: string;
  readonly onReadings: ReadingsHandler;
  readonly onHealth: (h: DeviceHealth) => void;
  readonly logger?: Logger;
}

/**
 * Start the LAN listener and its drivers.
 * @example const lan = await startLocalBroker({ listener: mapping.local, devices, gateway: 'gw-1', ... });
 */
export async function startLocalBroker(options: LocalBrokerOptions): Promise<LocalBroker> {
  const config = loadConfig({
    env: {},
    overrides: { dataDir: options.dataDir, logLevel: 'silent', mqtt: { port: options.listener.port } },
  });
  const logger = options.logger ?? createLogger('silent');
  const db: Database = await openDatabase({
    dataDir: options.dataDir,
    databaseUrl: null,
    file: 'lan-broker.db',
  });
  const broker = createBroker({
    config,
    logger: logger.child({ ctx: 'gateway.lan' }),
    metrics: createMetricsRegistry({ processMetrics: false }),
    db,
    hooks: localHooks(options.listener.users),
  });
  await broker.start();
  const server: Server = createServer({ noDelay: true }, (socket) =>
    broker.handleConnection(socket, {
      transport: 'tcp',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localPort: socket.localPort ?? 0,
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listener.port, options.listener.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.listener.port;

  const drivers = options.devices.map((device): FieldDriver => {
    const health = new HealthTracker(device.name, 'mqtt', options.onHealth);
    let enabled = true;
    let skipped = 0;
    const unsubscribe: Array<() => void> = [];
    const subscribe = () => {
      for (const tag of device.tags) {
        const topic = renderTopic(tag.topic, {
          gateway: options.gateway,
          device: device.name,
          tag: tag.name,
        });
        unsubscribe.push(
          broker.subscribeInternal(tag.subscribe, (message) => {
            const value = valueOf(tag, message.payload);
            if (value === undefined) {
              skipped++;
              return;
            }
            const ts = Date.now();
            health.ok(ts);
            options.onReadings(device.name, ts, [
              { tag: tag.name, measure: tag.measure, topic, value: scaled(value, tag.scale, tag.offset) },
            ]);
          }),
        );
      }
    };
    return {
      device: device.name,
      start() {
        subscribe();
        health.set('up');
      },
      health: () => ({ ...health.snapshot(), errors: health.errors + skipped }),
      setInterval: () => false,
      setEnabled(on: boolean) {
        if (on === enabled) return;
        enabled = on;
        if (on) {
          subscribe();
          health.set('up');
        } else {
          for (const u of unsubscribe.splice(0)) u();
          health.set('disabled');
        }
      },
      async close() {
        for (const u of unsubscribe.splice(0)) u();
      },
    };
  });

  return {
    port,
    broker,
    drivers,
    async close() {
      for (const d of drivers) await d.close();
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      await broker.close();
      await closing;
      await db.close();
    },
  };
}
