/**
 * One info line per client connect, disconnect and refused CONNECT, as Mosquitto logs them, so an operator
 * can follow a device's sessions in the log. At scale (a connection storm) the lines are budgeted: at most
 * `budget` a second; past it they are counted, and one summary line per second says how many of each were
 * left out (rolled by the core's sweep timer, so the summary comes even when the storm stops).
 */
import type { Logger } from '../observability/index.js';
import type { Connection } from './connection.js';
import { reasonName } from './reason-codes.js';

/** Connection log lines per second before they are summarised. */
export const CONNECTION_LOG_BUDGET = 50;

type Kind = 'connected' | 'disconnected' | 'refused';

export class ConnectionLog {
  private windowStart = 0;
  private count = 0;
  private suppressed: Record<Kind, number> = { connected: 0, disconnected: 0, refused: 0 };

  constructor(
    private readonly log: Logger,
    private readonly budget = CONNECTION_LOG_BUDGET,
  ) {}

  connected(conn: Connection, now = Date.now()): void {
    if (!this.admit('connected', now)) return;
    this.log.info(
      {
        event: 'connect',
        clientId: conn.clientId,
        principal: conn.principal?.id,
        principalKind: conn.principal?.kind,
        protocolVersion: conn.version === 5 ? '5.0' : conn.version === 4 ? '3.1.1' : '3.1',
        transport: conn.info.transport,
        remote: `${conn.info.remoteAddress}:${conn.info.remotePort}`,
        keepAlive: conn.keepAlive,
      },
      'mqtt client connected',
    );
  }

  disconnected(conn: Connection, now = Date.now()): void {
    if (!this.admit('disconnected', now)) return;
    this.log.info(
      {
        event: 'disconnect',
        clientId: conn.clientId,
        principal: conn.principal?.id,
        reason: conn.closeReason ?? 'connection_lost',
        durationMs: now - conn.connectedAt,
        remote: `${conn.info.remoteAddress}:${conn.info.remotePort}`,
      },
      'mqtt client disconnected',
    );
  }

  refused(conn: Connection, reasonCode: number, reason: string, now = Date.now()): void {
    if (!this.admit('refused', now)) return;
    this.log.info(
      {
        event: 'refused',
        clientId: conn.clientId,
        reasonCode,
        reasonName: reasonName(reasonCode),
        reason,
        protocolVersion: conn.version === 5 ? '5.0' : conn.version === 4 ? '3.1.1' : '3.1',
        transport: conn.info.transport,
        remote: `${conn.info.remoteAddress}:${conn.info.remotePort}`,
      },
      'mqtt client refused',
    );
  }

  /** End the second: say how many lines were left out (also called by the sweep timer). */
  roll(now = Date.now()): void {
    if (now - this.windowStart < 1000) return;
    const s = this.suppressed;
    const total = s.connected + s.disconnected + s.refused;
    if (total > 0) {
      this.log.info(
        { event: 'summary', suppressed: total, ...s, windowMs: now - this.windowStart },
        `mqtt connection log: ${total} lines left out (over ${this.budget} a second)`,
      );
      this.suppressed = { connected: 0, disconnected: 0, refused: 0 };
    }
    this.windowStart = now;
    this.count = 0;
  }

  private admit(kind: Kind, now: number): boolean {
    if (!this.log.isLevelEnabled('info')) return false;
    this.roll(now);
    if (this.count < this.budget) {
      this.count++;
      return true;
    }
    this.suppressed[kind]++;
    return false;
  }
}
