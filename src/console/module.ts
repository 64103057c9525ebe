import type { IncomingMessage } from 'node:http';
import type { SessionCaller, StartedContext } from '../api/index.js';
import { E } from '../errors/index.js';
import type { Broker } from '../mqtt/index.js';
import { Counter, type Logger, type Registry } from '../observability/index.js';
import type { FieldProvider, FleetIndex } from '../registry/index.js';
import type { Database } from '../store/index.js';
import type { Timeseries } from '../timeseries/index.js';
import { consoleApi } from './api.js';
import { createLiveHub } from './live.js';
import { createOverview } from './overview.js';
import { PresenceLog } from './presence.js';
import { openSessionStore, type SessionKey } from './sessions.js';
import { createStaticFiles, defaultConsoleDir } from './static.js';

/** API families a console session may name in `x-thingstead-service` (the SigV4 signing names). */
const SERVICES = new Set(['iot', 'iotdata', 'iot-jobs-data']);
export const SERVICE_HEADER = 'x-thingstead-service';

export interface ConsoleService {
  /**
   * The session-cookie authentication handed to the AWS dispatcher (src/api/aws.ts `session`): the
   * session's access key and role, and the API family the request names; CSRF token and Origin checked.
   */
  session(req: IncomingMessage): Promise<SessionCaller | undefined>;
}

/**
 * Start the web console: its static files at `/` (dist/console/web), sign-in to a session cookie, its own
 * JSON endpoints and live feed under /console/api/, and the session authentication the AWS dispatcher uses
 * for the console's calls to the AWS-compatible APIs. Starts after the broker, registry and time-series
 * store and before the HTTP API (which mounts its routes and `service.session`).
 */
export async function startConsole(o: {
  readonly db: Database;
  readonly keys: { lookup(accessKeyId: string): Promise<SessionKey | undefined> };
  readonly broker: Broker;
  readonly index: FleetIndex;
  readonly fieldProviders: readonly FieldProvider[];
  readonly timeseries: Timeseries;
  readonly metrics: Registry;
  readonly logger: Logger;
  readonly region: string;
  readonly accountId: string;
  readonly config: {
    readonly sessionTtlMs: number;
    readonly maxLiveClients: number;
    readonly maxLiveBufferBytes: number;
  };
  /** The build to serve (default: this package's dist/console/web). */
  readonly dir?: string;
}): Promise<StartedContext<ConsoleService>> {
  const signIns = new Counter({
    name: 'thingstead_console_sign_ins_total',
    help: 'Console sign-ins by outcome (ok, failed, throttled).',
    labelNames: ['outcome'] as const,
    registers: [o.metrics],
  });
  const sessions = await openSessionStore({
    db: o.db,
    keys: o.keys,
    ttlMs: o.config.sessionTtlMs,
    onSignIn: (outcome) => signIns.inc({ outcome }),
  });
  const presence = new PresenceLog();
  const unsubscribe = o.broker.subscribeInternal('$aws/events/presence/+/+', (m) =>
    presence.onEvent(m.topic, m.payload),
  );
  const overview = createOverview({ index: o.index, broker: o.broker, metrics: o.metrics, presence });
  const live = createLiveHub({
    timeseries: o.timeseries,
    overview,
    metrics: o.metrics,
    logger: o.logger,
    maxClients: o.config.maxLiveClients,
    maxBufferBytes: o.config.maxLiveBufferBytes,
  });
  const api = consoleApi({
    sessions,
    keys: o.keys,
    index: o.index,
    isConnected: (name) => o.broker.isConnected(name),
    fieldProviders: o.fieldProviders,
    timeseries: o.timeseries,
    overview,
    presence,
    live,
    region: o.region,
    accountId: o.accountId,
    ttlMs: o.config.sessionTtlMs,
    metrics: o.metrics,
    logger: o.logger,
  });
  const files = createStaticFiles(o.dir ?? defaultConsoleDir());
  const purge = setInterval(() => {
    sessions.purge().catch((err: unknown) => o.logger.warn({ err }, 'console session purge failed'));
  }, 3_600_000);
  purge.unref();

  return {
    name: 'console',
    service: {
      async session(req) {
        const s = await sessions.fromRequest(req);
        if (!s) return undefined;
        sessions.checkCsrf(req, s);
        const named = req.headers[SERVICE_HEADER];
        const service = typeof named === 'string' ? named : 'iot';
        if (!SERVICES.has(service)) throw E.ConsoleServiceHeader({ service });
        return { accessKeyId: s.accessKeyId, role: s.role, service };
      },
    },
    routes: [api, (req, res) => files(req, res, (req.url ?? '/').split('?')[0]!)],
    close() {
      clearInterval(purge);
      unsubscribe();
      live.close();
      sessions.close();
    },
  };
}
