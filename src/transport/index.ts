/**
 * Transports: plain TCP, mutual TLS, WebSocket (subprotocol `mqtt`, on the HTTP port at /mqtt), WebSocket
 * over TLS (`mqtt.wssPort`) and the ALPN port (`mqtt.alpnPort`: MQTT, device HTTPS and WSS on one port, as
 * AWS's 443). Each turns a connection into a duplex stream plus ConnectionInfo and hands it to the broker:
 * one broker code path for every transport (device HTTPS sockets go to identity's device HTTPS plane).
 * Imports: observability; types only from config, identity (the TLS material) and mqtt (the broker).
 */
export { ALPN, startListeners, type Listeners, type Endpoint } from './listeners.js';
