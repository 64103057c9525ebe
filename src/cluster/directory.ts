/**
 * The cluster's directory in PostgreSQL: which nodes are alive (a heartbeat row each) and which node owns
 * each connected client id and persistent session (one row per client id). Ownership moves with
 * conditional updates, so two nodes never both win a client id: a CONNECT claims it (learning the previous
 * owner, which it asks to let go), and a node that finds another dead adopts what that node owned.
 *
 * Contract: a row's `will` is the will of the connection that is up on the owning node (authorized when it
 * was set), published by whoever adopts the row if that node dies first; it is cleared when the
 * connection ends (from then on the session's own stored will, if delayed, is in mqtt_wills).
 */
import type { Migration, PostgresDatabase } from '../store/index.js';
import { migrate } from '../store/index.js';

export const CLUSTER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'cluster nodes and client ownership',
    sqlite: `SELECT 1;`,
    postgres: `
      CREATE TABLE cluster_nodes (node_id TEXT PRIMARY KEY, name TEXT NOT NULL, started_at BIGINT NOT NULL,
        seen_at BIGINT NOT NULL, stats TEXT);
      CREATE TABLE cluster_clients (client_id TEXT PRIMARY KEY, node_id TEXT NOT NULL,
        persistent BOOLEAN NOT NULL, will TEXT, conn TEXT, claimed_at BIGINT NOT NULL);
      CREATE INDEX cluster_clients_node ON cluster_clients (node_id);`,
  },
];

export interface NodeRow {
  readonly nodeId: string;
  readonly name: string;
  readonly startedAt: number;
  readonly seenAt: number;
  readonly stats: unknown;
}

export interface AdoptedClient {
  readonly clientId: string;
  readonly persistent: boolean;
  /** The will of the connection that was up when its node died (JSON, see will-codec), or null. */
  readonly will: string | null;
  /** That connection (JSON ConnRecord), or null when the session was offline. */
  readonly conn: string | null;
}

/** What the cluster keeps of a connection that is up, for its disconnected event if its node dies. */
export interface ConnRecord {
  readonly principalId: string;
  readonly ipAddress: string;
  readonly sessionIdentifier: string;
  readonly thingName?: string | undefined;
}

export class ClusterDirectory {
  private lastStamp = 0;

  /**
   * Strictly increasing on this node (epoch ms, or one more than the last): a claim's `claimed_at`, and
   * the moment a session ended or went offline here, so a late `forget`/`offline` never touches a claim
   * this node made after it (a client reconnecting to the same node at once).
   */
  stamp(): number {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return this.lastStamp;
  }

  constructor(
    private readonly db: PostgresDatabase,
    readonly nodeId: string,
  ) {}

  async init(name: string): Promise<void> {
    await migrate(this.db, 'cluster', CLUSTER_MIGRATIONS);
    const now = Date.now();
    await this.db.run(
      'INSERT INTO cluster_nodes (node_id, name, started_at, seen_at) VALUES ($1, $2, $3, $3)',
      [this.nodeId, name, now],
    );
  }

  /** Record that this node is alive (and what it holds, for the cluster view). */
  async heartbeat(stats: unknown): Promise<void> {
    const n = await this.db.run('UPDATE cluster_nodes SET seen_at = $2, stats = $3 WHERE node_id = $1', [
      this.nodeId,
      Date.now(),
      JSON.stringify(stats),
    ]);
    // Taken for dead by another node (paused too long): come back; what it adopted stays adopted.
    if (n === 0)
      await this.db.run(
        'INSERT INTO cluster_nodes (node_id, name, started_at, seen_at, stats) VALUES ($1, $1, $2, $2, $3)',
        [this.nodeId, Date.now(), JSON.stringify(stats)],
      );
  }

  /**
   * This node takes `clientId`. Returns the node that owned it before (null: nobody) and that owner's
   * connection will (published by this node if that owner turns out to be dead).
   */
  async claim(
    clientId: string,
    persistent: boolean,
    will: string | null,
    conn: ConnRecord,
  ): Promise<{ previous: string | null; previousWill: string | null; previousConn: string | null }> {
    return this.db.transaction(async (tx) => {
      const old = await tx.query<{ node_id: string; will: string | null; conn: string | null }>(
        'SELECT node_id, will, conn FROM cluster_clients WHERE client_id = $1 FOR UPDATE',
        [clientId],
      );
      await tx.run(
        `INSERT INTO cluster_clients (client_id, node_id, persistent, will, conn, claimed_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (client_id) DO UPDATE SET node_id = EXCLUDED.node_id, persistent = EXCLUDED.persistent,
         will = EXCLUDED.will, conn = EXCLUDED.conn, claimed_at = EXCLUDED.claimed_at`,
        [clientId, this.nodeId, persistent, will, JSON.stringify(conn), this.stamp()],
      );
      return {
        previous: old[0]?.node_id ?? null,
        previousWill: old[0]?.will ?? null,
        previousConn: old[0]?.conn ?? null,
      };
    });
  }

  /**
   * The connection ended (at `at`, a `stamp()`); the persistent session stays on this node (its will is
   * settled). A claim made after `at` (here or by another node) is left alone.
   */
  async offline(clientId: string, at: number): Promise<void> {
    await this.db.run(
      'UPDATE cluster_clients SET will = NULL, conn = NULL WHERE client_id = $1 AND node_id = $2 AND claimed_at < $3',
      [clientId, this.nodeId, at],
    );
  }

  /** The session ended on this node at `at` (a `stamp()`). A claim made after it is left alone. */
  async forget(clientId: string, at: number): Promise<void> {
    await this.db.run(
      'DELETE FROM cluster_clients WHERE client_id = $1 AND node_id = $2 AND claimed_at < $3',
      [clientId, this.nodeId, at],
    );
  }

  /** Is that node alive (heard of within `deadAfterMs`)? */
  async alive(nodeId: string, deadAfterMs: number): Promise<boolean> {
    const rows = await this.db.query('SELECT 1 FROM cluster_nodes WHERE node_id = $1 AND seen_at > $2', [
      nodeId,
      Date.now() - deadAfterMs,
    ]);
    return rows.length > 0;
  }

  /**
   * Take over what dead nodes owned: nodes not heard of within `deadAfterMs` are removed, and every client
   * row whose node is gone, and every stored session nobody owns, becomes this node's. Rows are moved with
   * conditional updates, so each goes to exactly one adopter.
   */
  async adoptOrphans(deadAfterMs: number): Promise<{ deadNodes: string[]; clients: AdoptedClient[] }> {
    const dead = await this.db.query<{ node_id: string }>(
      'DELETE FROM cluster_nodes WHERE seen_at <= $1 AND node_id <> $2 RETURNING node_id',
      [Date.now() - deadAfterMs, this.nodeId],
    );
    const rows = await this.db.query<{
      client_id: string;
      persistent: boolean;
      will: string | null;
      conn: string | null;
    }>(
      `WITH moved AS (SELECT client_id, persistent, will, conn FROM cluster_clients
         WHERE node_id NOT IN (SELECT node_id FROM cluster_nodes) FOR UPDATE SKIP LOCKED)
       UPDATE cluster_clients c SET node_id = $1, will = NULL, conn = NULL, claimed_at = $2 FROM moved
       WHERE c.client_id = moved.client_id RETURNING c.client_id, moved.persistent, moved.will, moved.conn`,
      [this.nodeId, this.stamp()],
    );
    // Sessions stored before cluster mode (or whose row was lost) belong to nobody yet.
    const unowned = await this.db.query<{ client_id: string }>(
      `INSERT INTO cluster_clients (client_id, node_id, persistent, will, claimed_at)
       SELECT client_id, $1, TRUE, NULL, $2 FROM mqtt_sessions
       WHERE client_id NOT IN (SELECT client_id FROM cluster_clients)
       ON CONFLICT (client_id) DO NOTHING RETURNING client_id`,
      [this.nodeId, this.stamp()],
    );
    return {
      deadNodes: dead.map((r) => r.node_id),
      clients: [
        ...rows.map((r) => ({
          clientId: r.client_id,
          persistent: Boolean(r.persistent),
          will: r.will,
          conn: r.conn,
        })),
        ...unowned.map((r) => ({ clientId: r.client_id, persistent: true, will: null, conn: null })),
      ],
    };
  }

  async nodes(): Promise<NodeRow[]> {
    const rows = await this.db.query<Record<string, unknown>>(
      'SELECT node_id, name, started_at, seen_at, stats FROM cluster_nodes ORDER BY started_at',
    );
    return rows.map((r) => ({
      nodeId: String(r.node_id),
      name: String(r.name),
      startedAt: Number(r.started_at),
      seenAt: Number(r.seen_at),
      stats: typeof r.stats === 'string' ? (JSON.parse(r.stats) as unknown) : null,
    }));
  }

  /** Leave gracefully: the node's row goes, so the others adopt what it still owns at once. */
  async leave(): Promise<void> {
    await this.db.run('DELETE FROM cluster_nodes WHERE node_id = $1', [this.nodeId]);
  }
}
