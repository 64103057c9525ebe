/**
 * Packet dispatch by type, plus the small control packets (PINGREQ [MQTT-3.12], DISCONNECT [MQTT-3.14]).
 * Packets a client must never send (CONNACK, SUBACK, ...) are protocol errors [MQTT-5.0 §4.13.2] (v5: DISCONNECT 0x82).
 */
import type { IDisconnectPacket, Packet } from 'mqtt-packet';
import type { Connection } from '../connection.js';
import { handleAuth, handleConnect } from './connect.js';
import { handlePuback, handlePubcomp, handlePublish, handlePubrec, handlePubrel } from './publish.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import { RC } from '../reason-codes.js';

export function dispatch(conn: Connection, packet: Packet): void {
  if (conn.state === 'authwait' && packet.cmd !== 'auth') {
    return conn.protocolError(RC.PROTOCOL_ERROR, `${packet.cmd} during enhanced authentication`);
  }
  switch (packet.cmd) {
    case 'publish':
      return handlePublish(conn, packet);
    case 'puback':
      return handlePuback(conn, packet);
    case 'pubrec':
      return handlePubrec(conn, packet);
    case 'pubrel':
      return handlePubrel(conn, packet);
    case 'pubcomp':
      return handlePubcomp(conn, packet);
    case 'subscribe':
      return handleSubscribe(conn, packet);
    case 'unsubscribe':
      return handleUnsubscribe(conn, packet);
    case 'pingreq':
      if (conn.state !== 'connected') return conn.protocolError(RC.PROTOCOL_ERROR, 'PINGREQ before CONNACK');
      return conn.sendPacket({ cmd: 'pingresp' });
    case 'disconnect':
      return handleDisconnect(conn, packet);
    case 'connect':
      return handleConnect(conn, packet);
    case 'auth':
      return handleAuth(conn, packet);
    default:
      return conn.protocolError(RC.PROTOCOL_ERROR, `a client must not send ${packet.cmd}`);
  }
}

function handleDisconnect(conn: Connection, p: IDisconnectPacket): void {
  if (conn.state !== 'connected') return conn.close('client_disconnect');
  const code = p.reasonCode ?? RC.NORMAL_DISCONNECTION;
  const expiry = p.properties?.sessionExpiryInterval;
  const s = conn.session!;
  if (conn.version === 5 && expiry !== undefined) {
    // [MQTT-3.14.2-2] a session that started with expiry 0 cannot be given one at DISCONNECT.
    if (conn.connectExpiryZero && expiry > 0)
      return conn.protocolError(RC.PROTOCOL_ERROR, 'session expiry was 0 at CONNECT');
    s.expiryInterval = Math.min(expiry, conn.core.config.limits.sessionExpiryMax);
  }
  // [MQTT-3.14.4-3] DISCONNECT 0x00 discards the will; 0x04 (Disconnect with Will Message) keeps it.
  if (code !== RC.DISCONNECT_WITH_WILL_MESSAGE) conn.will = null;
  conn.close('client_disconnect');
}
