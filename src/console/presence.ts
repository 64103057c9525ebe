/**
 * Connection history from the broker's lifecycle events (`$aws/events/presence/connected|disconnected/{id}`,
 * reference §8.5), kept in memory by this process since it started: the console's "recent disconnects"
 * and a thing's connection history. Bounded: the last `perClient` events of at most `maxClients` client
 * ids (the least recently seen id is forgotten first) and the last `recent` disconnects overall.
 *
 * Hot path: `onEvent` runs on the broker's routing path (subscribeInternal), only at connects and
 * disconnects; it parses one small JSON payload and moves a map entry, nothing else.
 */
export interface PresenceEvent {
  readonly clientId: string;
  readonly at: number;
  readonly eventType: 'connected' | 'disconnected';
  readonly disconnectReason?: string;
  readonly ipAddress?: string;
  readonly principal?: string;
}

export class PresenceLog {
  private readonly byClient = new Map<string, PresenceEvent[]>();
  private readonly disconnects: PresenceEvent[] = [];
  /** Events not kept because their payload did not parse. */
  undecodable = 0;

  constructor(private readonly limits = { perClient: 20, maxClients: 20_000, recent: 50 }) {}

  onEvent(topic: string, payload: Buffer): void {
    const m = /^\$aws\/events\/presence\/(connected|disconnected)\/(.+)$/.exec(topic);
    if (!m) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.undecodable++;
      return;
    }
    const event: PresenceEvent = {
      clientId: m[2]!,
      at: typeof body.timestamp === 'number' ? body.timestamp : Date.now(),
      eventType: m[1] as 'connected' | 'disconnected',
      ...(typeof body.disconnectReason === 'string' ? { disconnectReason: body.disconnectReason } : {}),
      ...(typeof body.ipAddress === 'string' ? { ipAddress: body.ipAddress } : {}),
      ...(typeof body.principalIdentifier === 'string' ? { principal: body.principalIdentifier } : {}),
    };
    let list = this.byClient.get(event.clientId);
    if (list) this.byClient.delete(event.clientId);
    else {
      list = [];
      if (this.byClient.size >= this.limits.maxClients) {
        const oldest = this.byClient.keys().next().value;
        if (oldest !== undefined) this.byClient.delete(oldest);
      }
    }
    list.push(event);
    if (list.length > this.limits.perClient) list.shift();
    this.byClient.set(event.clientId, list);
    if (event.eventType === 'disconnected') {
      this.disconnects.push(event);
      if (this.disconnects.length > this.limits.recent) this.disconnects.shift();
    }
  }

  /** A client id's events, newest first. */
  history(clientId: string): PresenceEvent[] {
    return [...(this.byClient.get(clientId) ?? [])].reverse();
  }

  /** The most recent disconnects, newest first. */
  recentDisconnects(limit = 20): PresenceEvent[] {
    return this.disconnects.slice(-limit).reverse();
  }
}
