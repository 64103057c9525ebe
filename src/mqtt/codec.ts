/**
 * Outbound PUBLISH encoding on top of mqtt-packet (the general codec; nothing here re-implements it).
 * Adds the per-delivery parts: remaining Message Expiry Interval [MQTT-3.3.2-6], Subscription Identifiers
 * [MQTT-3.3.4-3], and server-to-client Topic Aliases [MQTT-3.3.2-7..12].
 */
import mqttPacket from 'mqtt-packet';
import type { IPublishPacket } from 'mqtt-packet';
import type { PublishProperties } from './types.js';

export interface OutboundPublish {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly dup: boolean;
  readonly packetId: number;
  readonly properties: PublishProperties | undefined;
  readonly expiresAt: number | null;
  readonly subIds: number[] | null;
}

/** The parts of a connection the encoder reads (alias state is updated in place). */
export interface EncodeTarget {
  readonly version: 3 | 4 | 5;
  readonly aliasMaxOut: number;
  aliasesOut: Map<string, number> | null;
}

type V5Props = NonNullable<IPublishPacket['properties']>;

export function encodePublish(target: EncodeTarget, p: OutboundPublish): Buffer {
  const packet: IPublishPacket = {
    cmd: 'publish',
    topic: p.topic,
    payload: p.payload,
    qos: p.qos,
    dup: p.dup,
    retain: p.retain,
  };
  if (p.qos > 0) packet.messageId = p.packetId;
  if (target.version === 5) {
    let props: V5Props | undefined = p.properties ? { ...(p.properties as V5Props) } : undefined;
    if (p.expiresAt !== null) {
      props ??= {};
      props.messageExpiryInterval = Math.max(1, Math.ceil((p.expiresAt - Date.now()) / 1000));
    }
    if (p.subIds) {
      props ??= {};
      props.subscriptionIdentifier = p.subIds.length === 1 ? p.subIds[0]! : p.subIds;
    }
    if (target.aliasMaxOut > 0) {
      const aliases = (target.aliasesOut ??= new Map());
      const alias = aliases.get(p.topic);
      props ??= {};
      if (alias !== undefined) {
        packet.topic = '';
        props.topicAlias = alias;
      } else if (aliases.size < target.aliasMaxOut) {
        const next = aliases.size + 1;
        aliases.set(p.topic, next);
        props.topicAlias = next;
      }
    }
    if (props) packet.properties = props;
  }
  return mqttPacket.generate(packet, { protocolVersion: target.version });
}
