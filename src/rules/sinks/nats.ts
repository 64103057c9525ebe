import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import { ActionError, type ActionRequest } from '../actions.js';
import type { ActionConfig } from '../types.js';

/** JetStream publishes; one connection per server list, opened on first use and shared. */
export class NatsSink {
  private readonly connections = new Map<string, Promise<NatsConnection>>();

  /** `defaultServers`: rules.natsServers, for nats actions without `servers`. */
  constructor(private readonly defaultServers: string | null) {}

  async publish(config: ActionConfig, r: Extract<ActionRequest, { kind: 'nats' }>): Promise<void> {
    const servers = config.nats?.servers ?? this.defaultServers;
    if (!servers)
      throw new ActionError('no NATS servers configured (rules.natsServers or nats.servers)', false);
    let nc: NatsConnection;
    try {
      nc = await this.connection(servers);
    } catch (err) {
      throw new ActionError(`NATS connect to ${servers} failed: ${(err as Error).message}`, true);
    }
    const h = natsHeaders();
    for (const [k, v] of Object.entries(r.headers)) h.set(k, v);
    try {
      // JetStream publish resolves only once the stream has stored the message (the PubAck).
      await nc.jetstream().publish(r.subject, Buffer.from(r.payload, 'base64'), {
        headers: Object.keys(r.headers).length ? h : undefined,
        timeout: r.timeoutMs,
      });
    } catch (err) {
      throw new ActionError(`JetStream publish to ${r.subject} failed: ${(err as Error).message}`, true);
    }
  }

  private connection(servers: string): Promise<NatsConnection> {
    let c = this.connections.get(servers);
    if (!c) {
      c = connect({
        servers: servers.split(','),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 2000,
      });
      this.connections.set(servers, c);
      c.then(
        (nc) => void nc.closed().then(() => this.connections.delete(servers)),
        () => this.connections.delete(servers),
      );
    }
    return c;
  }

  close(): Promise<unknown>[] {
    const tasks = [...this.connections.values()].map((c) =>
      c.then((nc) => nc.close()).catch(() => undefined),
    );
    this.connections.clear();
    return tasks;
  }
}
