/**
 * MqttStore on embedded SQLite (better-sqlite3): synchronous prepared statements, one transaction per batch.
 */
import type { SqliteDatabase } from '../store/index.js';
import { migrate } from '../store/index.js';
import {
  MQTT_MIGRATIONS,
  decodeProperties,
  decodeWillParty,
  encodeProperties,
  encodeWillParty,
  type MqttStore,
  type StoreOp,
  type StoredRetained,
  type StoredSession,
  type StoredWill,
} from './store.js';

interface SessionRow {
  client_id: string;
  protocol_version: number;
  expiry_interval: number;
  disconnected_at: number | null;
}
interface SubRow {
  client_id: string;
  filter: string;
  qos: number;
  nl: number;
  rap: number;
  rh: number;
  sub_id: number | null;
}
interface QueueRow {
  client_id: string;
  seq: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  properties: string | null;
  expires_at: number | null;
  state: number;
  packet_id: number | null;
}
interface Qos2Row {
  client_id: string;
  packet_id: number;
}
interface WillRow {
  client_id: string;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  properties: string | null;
  fire_at: number;
  principal: string;
  info: string;
}
interface RetainedRow {
  topic: string;
  payload: Buffer;
  qos: number;
  properties: string | null;
  expires_at: number | null;
  modified_at: number;
  owner: string | null;
}

export function createSqliteMqttStore(db: SqliteDatabase): MqttStore {
  let apply: ((ops: readonly StoreOp[]) => void) | null = null;

  const prepareApply = () => {
    const raw = db.raw;
    const upsertSession = raw.prepare(
      `INSERT INTO mqtt_sessions (client_id, protocol_version, expiry_interval, disconnected_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version,
       expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at`,
    );
    const delSession = raw.prepare('DELETE FROM mqtt_sessions WHERE client_id = ?');
    const delSubs = raw.prepare('DELETE FROM mqtt_subscriptions WHERE client_id = ?');
    const delQueue = raw.prepare('DELETE FROM mqtt_queue WHERE client_id = ?');
    const delQos2 = raw.prepare('DELETE FROM mqtt_qos2 WHERE client_id = ?');
    const putQos2 = raw.prepare('INSERT INTO mqtt_qos2 (client_id, packet_id) VALUES (?, ?)');
    const delWill = raw.prepare('DELETE FROM mqtt_wills WHERE client_id = ?');
    const putWill = raw.prepare(
      `INSERT INTO mqtt_wills (client_id, topic, payload, qos, retain, properties, fire_at, principal, info)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET topic = excluded.topic, payload = excluded.payload,
       qos = excluded.qos, retain = excluded.retain, properties = excluded.properties,
       fire_at = excluded.fire_at, principal = excluded.principal, info = excluded.info`,
    );
    const putSub = raw.prepare(
      `INSERT INTO mqtt_subscriptions (client_id, filter, qos, nl, rap, rh, sub_id) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, filter) DO UPDATE SET qos = excluded.qos, nl = excluded.nl, rap = excluded.rap,
       rh = excluded.rh, sub_id = excluded.sub_id`,
    );
    const delSub = raw.prepare('DELETE FROM mqtt_subscriptions WHERE client_id = ? AND filter = ?');
    const putQueued = raw.prepare(
      `INSERT INTO mqtt_queue (client_id, seq, topic, payload, qos, retain, properties, expires_at, state, packet_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, seq) DO UPDATE SET state = excluded.state, packet_id = excluded.packet_id`,
    );
    const delQueued = raw.prepare('DELETE FROM mqtt_queue WHERE client_id = ? AND seq = ?');
    const putRetained = raw.prepare(
      `INSERT INTO mqtt_retained (topic, payload, qos, properties, expires_at, modified_at, owner)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (topic) DO UPDATE SET payload = excluded.payload, qos = excluded.qos,
       properties = excluded.properties, expires_at = excluded.expires_at, modified_at = excluded.modified_at,
       owner = excluded.owner`,
    );
    const delRetained = raw.prepare('DELETE FROM mqtt_retained WHERE topic = ?');
    return raw.transaction((ops: readonly StoreOp[]) => {
      for (const o of ops) {
        switch (o.op) {
          case 'session':
            upsertSession.run(o.clientId, o.protocolVersion, o.expiryInterval, o.disconnectedAt);
            break;
          case 'deleteSession':
            delSession.run(o.clientId);
            delSubs.run(o.clientId);
            delQueue.run(o.clientId);
            delQos2.run(o.clientId);
            delWill.run(o.clientId);
            break;
          case 'qos2':
            delQos2.run(o.clientId);
            for (const id of o.packetIds) putQos2.run(o.clientId, id);
            break;
          case 'will': {
            const w = o.will;
            if (w === null) {
              delWill.run(o.clientId);
              break;
            }
            const party = encodeWillParty(w);
            putWill.run(
              o.clientId,
              w.topic,
              w.payload,
              w.qos,
              w.retain ? 1 : 0,
              encodeProperties(w.properties),
              w.fireAt,
              party.principal,
              party.info,
            );
            break;
          }
          case 'subscribe':
            putSub.run(
              o.clientId,
              o.sub.filter,
              o.sub.qos,
              o.sub.nl ? 1 : 0,
              o.sub.rap ? 1 : 0,
              o.sub.rh,
              o.sub.subId ?? null,
            );
            break;
          case 'unsubscribe':
            delSub.run(o.clientId, o.filter);
            break;
          case 'enqueue': {
            const m = o.message;
            putQueued.run(
              o.clientId,
              o.seq,
              m.topic,
              m.payload,
              m.qos,
              m.retain ? 1 : 0,
              encodeProperties(m.properties),
              m.expiresAt,
              o.state,
              o.packetId,
            );
            break;
          }
          case 'dequeue':
            delQueued.run(o.clientId, o.seq);
            break;
          case 'retain': {
            const m = o.message;
            putRetained.run(
              m.topic,
              m.payload,
              m.qos,
              encodeProperties(m.properties),
              m.expiresAt,
              m.modifiedAt,
              m.owner ?? null,
            );
            break;
          }
          case 'unretain':
            delRetained.run(o.topic);
            break;
        }
      }
    });
  };

  return {
    async init() {
      await migrate(db, 'mqtt', MQTT_MIGRATIONS);
      apply = prepareApply();
    },
    async loadSessions() {
      const sessions = db.raw.prepare('SELECT * FROM mqtt_sessions').all() as SessionRow[];
      const subs = db.raw.prepare('SELECT * FROM mqtt_subscriptions').all() as SubRow[];
      const queued = db.raw.prepare('SELECT * FROM mqtt_queue ORDER BY client_id, seq').all() as QueueRow[];
      const qos2 = db.raw.prepare('SELECT * FROM mqtt_qos2 ORDER BY client_id, packet_id').all() as Qos2Row[];
      const wills = db.raw.prepare('SELECT * FROM mqtt_wills').all() as WillRow[];
      const byId = new Map<string, StoredSession & { incomingQos2: number[]; will: StoredWill | null }>();
      for (const s of sessions) {
        byId.set(s.client_id, {
          clientId: s.client_id,
          protocolVersion: s.protocol_version,
          expiryInterval: s.expiry_interval,
          disconnectedAt: s.disconnected_at,
          subscriptions: [],
          queue: [],
          incomingQos2: [],
          will: null,
        });
      }
      for (const r of qos2) byId.get(r.client_id)?.incomingQos2.push(r.packet_id);
      for (const r of wills) {
        const s = byId.get(r.client_id);
        const party = decodeWillParty(r.principal, r.info);
        if (!s || !party) continue;
        s.will = {
          topic: r.topic,
          payload: r.payload,
          qos: r.qos as 0 | 1 | 2,
          retain: r.retain === 1,
          properties: decodeProperties(r.properties),
          fireAt: r.fire_at,
          ...party,
        };
      }
      for (const r of subs) {
        byId.get(r.client_id)?.subscriptions.push({
          filter: r.filter,
          qos: r.qos as 0 | 1 | 2,
          nl: r.nl === 1,
          rap: r.rap === 1,
          rh: r.rh,
          subId: r.sub_id ?? undefined,
        });
      }
      for (const r of queued) {
        byId.get(r.client_id)?.queue.push({
          seq: r.seq,
          state: r.state as 0 | 1 | 2,
          packetId: r.packet_id,
          message: {
            topic: r.topic,
            payload: r.payload,
            qos: r.qos as 0 | 1 | 2,
            retain: r.retain === 1,
            properties: decodeProperties(r.properties),
            expiresAt: r.expires_at,
          },
        });
      }
      return [...byId.values()];
    },
    async loadRetained(): Promise<StoredRetained[]> {
      const rows = db.raw.prepare('SELECT * FROM mqtt_retained').all() as RetainedRow[];
      return rows.map((r) => ({
        topic: r.topic,
        payload: r.payload,
        qos: r.qos as 0 | 1 | 2,
        retain: true,
        properties: decodeProperties(r.properties),
        expiresAt: r.expires_at,
        modifiedAt: r.modified_at,
        owner: r.owner,
      }));
    },
    async apply(ops) {
      if (!apply) throw new Error('mqtt store used before init()');
      if (ops.length) apply(ops);
    },
  };
}
