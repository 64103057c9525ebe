/**
 * The ledger's units and AWS's rules for counting them (AWS IoT Core pricing, "additional metering
 * details"; docs/metering.md has the table with each rule's source).
 *
 * - Messages are metered in 5 KB blocks of their metered size (topic + payload + MQTT 5 properties, see
 *   mqtt's publishBytes): 0..5120 bytes is 1 message, 5121 bytes is 2. An HTTP publish (SigV4 data plane,
 *   device HTTPS) is one such message. A CONNECT, a SUBSCRIBE and a
 *   PUBACK the device sends count as messages in; PINGREQ/PINGRESP, CONNACK, SUBACK, UNSUBSCRIBE,
 *   DISCONNECT and the PUBACKs the broker sends are not metered. A retained PUBLISH counts as a message
 *   in and once more as `retained` (AWS meters "MQTT PUBLISH" and "MQTT RETAINED").
 * - The same messages in Azure IoT Hub's 4 KB blocks (`*_4kb`), so the cost report can price both.
 * - Registry and shadow operations in 1 KB blocks of the record (request or response body, the larger).
 * - Rules triggered and actions executed in 5 KB blocks of the message the rule processed.
 * - Connection minutes: each connection is charged its started minutes (a 3.5-minute connection is 4).
 */

export const UNITS = [
  'connection_minutes',
  'messages_in',
  'messages_out',
  'retained',
  'messages_in_4kb',
  'messages_out_4kb',
  'bytes_in',
  'bytes_out',
  'registry_ops',
  'shadow_ops',
  'rules_triggered',
  'actions_executed',
  'job_executions',
  'throttled',
] as const;

export type Unit = (typeof UNITS)[number];

/** Index of each unit in a counter array (hot path: a Float64Array indexed by these). */
export const U = Object.fromEntries(UNITS.map((u, i) => [u, i])) as { readonly [K in Unit]: number };

export const UNIT_COUNT = UNITS.length;

/** What each unit counts, for --help, the API and docs. */
export const UNIT_HELP: Readonly<Record<Unit, string>> = {
  connection_minutes: 'minutes connected, each connection charged its started minutes',
  messages_in:
    'MQTT messages from devices (PUBLISH, CONNECT, SUBSCRIBE, PUBACK) and HTTP publishes, in 5 KB units',
  messages_out: 'MQTT PUBLISH delivered to devices and applications, in 5 KB units',
  retained: 'retained PUBLISH from devices, in 5 KB units (counted beside messages_in, as AWS meters it)',
  messages_in_4kb: 'messages_in in 4 KB units (Azure IoT Hub metering)',
  messages_out_4kb: 'messages_out in 4 KB units (Azure IoT Hub metering)',
  bytes_in: 'bytes read from the connection (every MQTT packet; the body of an HTTP publish)',
  bytes_out: 'bytes written to the connection (every MQTT packet)',
  registry_ops: 'registry API operations, in 1 KB units of the record',
  shadow_ops: 'shadow get/update/delete over MQTT or HTTP, in 1 KB units of the document',
  rules_triggered: 'rules whose WHERE matched a message, in 5 KB units of the message',
  actions_executed: 'rule actions started for a matched message, in 5 KB units of the message',
  job_executions: 'job executions created for the thing',
  throttled: 'requests refused by a quota (publishes, connects, subscriptions, API and shadow calls)',
};

const FIVE_KB = 5 * 1024;
const FOUR_KB = 4 * 1024;
const ONE_KB = 1024;

/** Messages in AWS's 5 KB blocks: at least one. Hot path (no allocation). */
export function units5k(bytes: number): number {
  return bytes <= FIVE_KB ? 1 : Math.ceil(bytes / FIVE_KB);
}

/** Messages in Azure IoT Hub's 4 KB blocks (paid tiers): at least one. */
export function units4k(bytes: number): number {
  return bytes <= FOUR_KB ? 1 : Math.ceil(bytes / FOUR_KB);
}

/** Registry and shadow operations in 1 KB blocks: at least one. */
export function units1k(bytes: number): number {
  return bytes <= ONE_KB ? 1 : Math.ceil(bytes / ONE_KB);
}

export function isUnit(name: string): name is Unit {
  return (UNITS as readonly string[]).includes(name);
}

const HOUR_MS = 3_600_000;

/** The start of the UTC hour holding `ms` (the ledger's time key). */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

export { HOUR_MS };
