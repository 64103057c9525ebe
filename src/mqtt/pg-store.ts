/**
 * MqttStore on PostgreSQL (scale-out): the same operations as the SQLite store, one transaction per batch.
 */
import type { PostgresDatabase } from '../store/index.js';
import { migrate } from '../store/index.js';
import {
  MQTT_MIGRATIONS,
  decodeProperties,
  decodeWillParty,
  encodeProperties,
  encodeWillParty,
  type MqttStore,
  type StoredRetained,
  type StoredSession,
  type StoredWill,
} from './store.js';

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function createPostgresMqttStore(db: PostgresDatabase): MqttStore {
  /** Every stored session, or (with `clientId`) that one's, read in one snapshot. */
  const readSessions = async (clientId?: string): Promise<StoredSession[]> => {
    const where = clientId === undefined ? '' : ' WHERE client_id = $1';
    const params = clientId === undefined ? [] : [clientId];
    return db.transaction(async (tx) => {
      if (clientId === undefined) await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      const sessions = await tx.query<Record<string, unknown>>(`SELECT * FROM mqtt_sessions${where}`, params);
      if (sessions.length === 0) return [];
      const subs = await tx.query<Record<string, unknown>>(
        `SELECT * FROM mqtt_subscriptions${where}`,
        params,
      );
      const queued = await tx.query<Record<string, unknown>>(
        `SELECT * FROM mqtt_queue${where} ORDER BY client_id, seq`,
        params,
      );
      const qos2 = await tx.query<Record<string, unknown>>(
        `SELECT * FROM mqtt_qos2${where} ORDER BY client_id, packet_id`,
        params,
      );
      const wills = await tx.query<Record<string, unknown>>(`SELECT * FROM mqtt_wills${where}`, params);
      return toSessions(sessions, subs, queued, qos2, wills);
    });
  };
  return {
    async init() {
      await migrate(db, 'mqtt', MQTT_MIGRATIONS);
    },
    loadSessions: () => readSessions(),
    async loadSession(clientId) {
      return (await readSessions(clientId))[0] ?? null;
    },
    async loadRetained(): Promise<StoredRetained[]> {
      const rows = await db.query<Record<string, unknown>>('SELECT * FROM mqtt_retained');
      return rows.map((r) => ({
        topic: String(r.topic),
        payload: r.payload as Buffer,
        qos: num(r.qos) as 0 | 1 | 2,
        retain: true,
        properties: decodeProperties(r.properties),
        expiresAt: numOrNull(r.expires_at),
        modifiedAt: num(r.modified_at),
        owner: typeof r.owner === 'string' ? r.owner : null,
      }));
    },
    async apply(ops) {
      if (!ops.length) return;
      await db.transaction(async (tx) => {
        for (const o of ops) {
          switch (o.op) {
            case 'session':
              await tx.run(
                `INSERT INTO mqtt_sessions (client_id, protocol_version, expiry_interval, disconnected_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (client_id) DO UPDATE SET
                 protocol_version = EXCLUDED.protocol_version, expiry_interval = EXCLUDED.expiry_interval,
                 disconnected_at = EXCLUDED.disconnected_at`,
                [o.clientId, o.protocolVersion, o.expiryInterval, o.disconnectedAt],
              );
              break;
            case 'deleteSession':
              await tx.run('DELETE FROM mqtt_sessions WHERE client_id = $1', [o.clientId]);
              await tx.run('DELETE FROM mqtt_subscriptions WHERE client_id = $1', [o.clientId]);
              await tx.run('DELETE FROM mqtt_queue WHERE client_id = $1', [o.clientId]);
              await tx.run('DELETE FROM mqtt_qos2 WHERE client_id = $1', [o.clientId]);
              await tx.run('DELETE FROM mqtt_wills WHERE client_id = $1', [o.clientId]);
              break;
            case 'qos2':
              await tx.run('DELETE FROM mqtt_qos2 WHERE client_id = $1', [o.clientId]);
              for (const id of o.packetIds)
                await tx.run('INSERT INTO mqtt_qos2 (client_id, packet_id) VALUES ($1, $2)', [
                  o.clientId,
                  id,
                ]);
              break;
            case 'will': {
              const w = o.will;
              if (w === null) {
                await tx.run('DELETE FROM mqtt_wills WHERE client_id = $1', [o.clientId]);
                break;
              }
              const party = encodeWillParty(w);
              await tx.run(
                `INSERT INTO mqtt_wills (client_id, topic, payload, qos, retain, properties, fire_at, principal, info)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (client_id) DO UPDATE SET
                 topic = EXCLUDED.topic, payload = EXCLUDED.payload, qos = EXCLUDED.qos, retain = EXCLUDED.retain,
                 properties = EXCLUDED.properties, fire_at = EXCLUDED.fire_at, principal = EXCLUDED.principal,
                 info = EXCLUDED.info`,
                [
                  o.clientId,
                  w.topic,
                  w.payload,
                  w.qos,
                  w.retain,
                  encodeProperties(w.properties),
                  w.fireAt,
                  party.principal,
                  party.info,
                ],
              );
              break;
            }
            case 'subscribe':
              await tx.run(
                `INSERT INTO mqtt_subscriptions (client_id, filter, qos, nl, rap, rh, sub_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (client_id, filter) DO UPDATE SET
                 qos = EXCLUDED.qos, nl = EXCLUDED.nl, rap = EXCLUDED.rap, rh = EXCLUDED.rh, sub_id = EXCLUDED.sub_id`,
                [o.clientId, o.sub.filter, o.sub.qos, o.sub.nl, o.sub.rap, o.sub.rh, o.sub.subId ?? null],
              );
              break;
            case 'unsubscribe':
              await tx.run('DELETE FROM mqtt_subscriptions WHERE client_id = $1 AND filter = $2', [
                o.clientId,
                o.filter,
              ]);
              break;
            case 'enqueue': {
              const m = o.message;
              await tx.run(
                `INSERT INTO mqtt_queue (client_id, seq, topic, payload, qos, retain, properties, expires_at,
                 state, packet_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (client_id, seq) DO UPDATE SET state = EXCLUDED.state, packet_id = EXCLUDED.packet_id`,
                [
                  o.clientId,
                  o.seq,
                  m.topic,
                  m.payload,
                  m.qos,
                  m.retain,
                  encodeProperties(m.properties),
                  m.expiresAt,
                  o.state,
                  o.packetId,
                ],
              );
              break;
            }
            case 'dequeue':
              await tx.run('DELETE FROM mqtt_queue WHERE client_id = $1 AND seq = $2', [o.clientId, o.seq]);
              break;
            case 'retain': {
              const m = o.message;
              await tx.run(
                `INSERT INTO mqtt_retained (topic, payload, qos, properties, expires_at, modified_at, owner)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (topic) DO UPDATE SET payload = EXCLUDED.payload,
                 qos = EXCLUDED.qos, properties = EXCLUDED.properties, expires_at = EXCLUDED.expires_at,
                 modified_at = EXCLUDED.modified_at, owner = EXCLUDED.owner`,
                [
                  m.topic,
                  m.payload,
                  m.qos,
                  encodeProperties(m.properties),
                  m.expiresAt,
                  m.modifiedAt,
                  m.owner ?? null,
                ],
              );
              break;
            }
            case 'unretain':
              await tx.run('DELETE FROM mqtt_retained WHERE topic = $1', [o.topic]);
              break;
          }
        }
      });
    },
  };
}

type Row = Record<string, unknown>;

function toSessions(sessions: Row[], subs: Row[], queued: Row[], qos2: Row[], wills: Row[]): StoredSession[] {
  const byId = new Map<string, StoredSession & { incomingQos2: number[]; will: StoredWill | null }>();
  for (const s of sessions) {
    const clientId = String(s.client_id);
    byId.set(clientId, {
      clientId,
      protocolVersion: num(s.protocol_version),
      expiryInterval: num(s.expiry_interval),
      disconnectedAt: numOrNull(s.disconnected_at),
      subscriptions: [],
      queue: [],
      incomingQos2: [],
      will: null,
    });
  }
  for (const r of qos2) byId.get(String(r.client_id))?.incomingQos2.push(num(r.packet_id));
  for (const r of wills) {
    const s = byId.get(String(r.client_id));
    const party = decodeWillParty(r.principal, r.info);
    if (!s || !party) continue;
    s.will = {
      topic: String(r.topic),
      payload: r.payload as Buffer,
      qos: num(r.qos) as 0 | 1 | 2,
      retain: Boolean(r.retain),
      properties: decodeProperties(r.properties),
      fireAt: num(r.fire_at),
      ...party,
    };
  }
  for (const r of subs) {
    byId.get(String(r.client_id))?.subscriptions.push({
      filter: String(r.filter),
      qos: num(r.qos) as 0 | 1 | 2,
      nl: Boolean(r.nl),
      rap: Boolean(r.rap),
      rh: num(r.rh),
      subId: numOrNull(r.sub_id) ?? undefined,
    });
  }
  for (const r of queued) {
    byId.get(String(r.client_id))?.queue.push({
      seq: num(r.seq),
      state: num(r.state) as 0 | 1 | 2,
      packetId: numOrNull(r.packet_id),
      message: {
        topic: String(r.topic),
        payload: r.payload as Buffer,
        qos: num(r.qos) as 0 | 1 | 2,
        retain: Boolean(r.retain),
        properties: decodeProperties(r.properties),
        expiresAt: numOrNull(r.expires_at),
      },
    });
  }
  return [...byId.values()];
}
