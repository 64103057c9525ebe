/**
 * The edge gateway (issue 15): `thingstead gateway` bridges field protocols (Modbus TCP, OPC UA, MQTT on the
 * LAN) to the platform over one MQTT/TLS uplink with its own certificate (provisioned by claim when it has
 * none), and never loses a reading while the uplink is down (a bounded disk queue, replayed in order).
 *
 * Files by role: gateway.ts (composition, shadow health and configuration, jobs), mapping.ts (the mapping
 * file) + located-json.ts (JSON with line and column), queue.ts (store and forward), upstream.ts (the
 * uplink), provision.ts (claim provisioning), driver.ts (what drivers share: health, backoff), modbus.ts,
 * opcua.ts, local-mqtt.ts (the drivers).
 * Imports: agent (firmware jobs), config, mqtt (the embedded LAN broker), observability, store.
 */
export { startGateway, type Gateway, type GatewayOptions, type GatewayStats } from './gateway.js';
export {
  parseMapping,
  MappingError,
  DEFAULT_TOPIC,
  type Mapping,
  type FieldDevice,
  type ModbusTag,
} from './mapping.js';
export { DiskQueue, type QueueOptions, type QueueStats, type DropReason } from './queue.js';
export { wirePayload } from './upstream.js';
export { provisionByClaim, loadIdentity, ProvisioningError, type Identity } from './provision.js';
export { decodeRegisters, planReads } from './modbus.js';
export { Backoff, type DeviceHealth } from './driver.js';
