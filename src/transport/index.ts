/**
 * Transports: plain TCP, mutual TLS and WebSocket (subprotocol `mqtt`, on the HTTP port at /mqtt).
 * Each turns a connection into a duplex stream plus ConnectionInfo and hands it to the broker:
 * one broker code path for every transport.
 * Imports: observability; types only from config, identity (the TLS material) and mqtt (the broker).
 */
export { startListeners, type Listeners, type Endpoint } from './listeners.js';
