/**
 * The edge gateway (issue 15): `thingstead gateway` bridges field protocols (Modbus TCP, OPC UA, MQTT on the
 * LAN) to the platform over one MQTT/TLS uplink with its own certificate (provisioned by claim when it has
 * none), and never loses a reading while the uplink is down (a bounded disk queue, replayed in order).
 *
 * Files by role: gateway.ts (composition, shadow health and configuration, jobs), mapping.ts (the mapping
 * file) + located-json.ts (JSON with line and column), queue.ts (store and forward), upstream.ts (the
 * uplink), provision.ts (claim provisioning), heap.ts (the young-generation cap), driver.ts (what drivers share:
 * health, backoff), modbus.ts, opcua.ts, local-mqtt.ts (the drivers; node-opcua, modbus-serial and the LAN broker
 * are loaded only when a device of theirs is configured).
 * Imports: agent (firmware jobs, loaded when configured), config, mqtt, store (the embedded LAN broker, loaded when
 * configured), observability.
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
export { capYoungGeneration, newSpaceBytes } from './heap.js';
