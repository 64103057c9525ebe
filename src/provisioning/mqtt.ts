/**
 * Fleet provisioning over MQTT (reference §8.4; AWS IoT Developer Guide, "Device provisioning MQTT API"):
 * the reserved-topic service for
 *
 *   $aws/certificates/create/{json|cbor}                          CreateKeysAndCertificate
 *   $aws/certificates/create-from-csr/{json|cbor}                 CreateCertificateFromCsr
 *   $aws/provisioning-templates/{templateName}/provision/{json|cbor}  RegisterThing
 *
 * Answers go to `<request topic>/accepted` or `/rejected` ONLY to the requesting client (broker.deliverTo:
 * "results through the same MQTT connection used to publish the request"), never through routing, in
 * the request's format (CBOR through cborg). A rejection is `{statusCode, errorCode, errorMessage}`; there
 * is no clientToken (the Device SDK v2 allows one outstanding request per operation and matches by topic).
 *
 * Authorization is the broker's, like any other topic: the request was an authorized iot:Publish (a claim
 * certificate's policy allows only these topics), and the answer is delivered only if the requester may
 * iot:Receive it. A full queue is answered 429 at once (onDrop), never left unanswered.
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { E, isThingsteadError, type ThingsteadError } from '../errors/index.js';
import { DEFAULT_MAX_JSON_DEPTH, parseJsonBounded, valueDepth, type JsonLimits } from '../json/index.js';
import type { Broker, ReservedTopicService, ServiceRequest } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import type { DeviceCertificates } from './certificates.js';
import { refusal, type Pipeline, type Refusal } from './pipeline.js';
import type { TraceLog } from './trace.js';

type Format = 'json' | 'cbor';
type Operation =
  | { readonly op: 'create'; readonly format: Format }
  | { readonly op: 'create-from-csr'; readonly format: Format }
  | { readonly op: 'provision'; readonly format: Format; readonly templateName: string };

export const PROVISIONING_FILTERS = [
  '$aws/certificates/create/+',
  '$aws/certificates/create-from-csr/+',
  '$aws/provisioning-templates/+/provision/+',
] as const;

/** The operation a request topic names, or null (an unknown format is not ours to answer). */
export function parseProvisioningTopic(topic: string): Operation | null {
  const levels = topic.split('/');
  if (levels[0] !== '$aws') return null;
  const format = levels[levels.length - 1];
  if (format !== 'json' && format !== 'cbor') return null;
  if (levels.length === 4 && levels[1] === 'certificates') {
    if (levels[2] === 'create') return { op: 'create', format };
    if (levels[2] === 'create-from-csr') return { op: 'create-from-csr', format };
    return null;
  }
  if (levels.length === 5 && levels[1] === 'provisioning-templates' && levels[3] === 'provision' && levels[2])
    return { op: 'provision', format, templateName: levels[2] };
  return null;
}

/**
 * Decode a request payload as its topic says; an empty payload is `{}`. A device's payload is held to the
 * platform's JSON limits (limits.maxJsonDepth, the payload size): JSON through the bounded parser, CBOR
 * checked for the same depth once decoded. Any failure is ProvisioningPayload, naming the problem.
 */
export function decodeRequest(
  payload: Buffer,
  format: Format,
  limits: JsonLimits = { maxDepth: DEFAULT_MAX_JSON_DEPTH },
): Record<string, unknown> {
  if (payload.length === 0) return {};
  let value: unknown;
  try {
    value =
      format === 'json' ? parseJsonBounded(payload, limits, 'The request payload') : cborDecode(payload);
  } catch (err) {
    throw E.ProvisioningPayload({ format: format.toUpperCase(), problem: (err as Error).message });
  }
  if (format === 'cbor' && valueDepth(value, limits.maxDepth) > limits.maxDepth)
    throw E.ProvisioningPayload({
      format: 'CBOR',
      problem: `it nests deeper than ${limits.maxDepth} levels (limits.maxJsonDepth)`,
    });
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array)
    throw E.ProvisioningPayload({ format: format.toUpperCase(), problem: 'it must be an object (a map)' });
  return value as Record<string, unknown>;
}

export function encodeAnswer(body: Record<string, unknown>, format: Format): Buffer {
  return format === 'json' ? Buffer.from(JSON.stringify(body)) : Buffer.from(cborEncode(body));
}

function stringMap(value: unknown, what: string, format: Format): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw E.ProvisioningPayload({ format: format.toUpperCase(), problem: `${what} must be an object` });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string')
      throw E.ProvisioningPayload({ format: format.toUpperCase(), problem: `${what}.${k} must be a string` });
    out[k] = v;
  }
  return out;
}

export function provisioningMqttService(options: {
  broker: Pick<Broker, 'deliverTo'>;
  pipeline: Pipeline;
  certificates: DeviceCertificates;
  traces: TraceLog;
  logger: Logger;
  queue: { maxItems: number; concurrency: number };
  /** Request payload limits (limits.maxJsonDepth and the payload size). */
  json?: JsonLimits | undefined;
}): ReservedTopicService {
  const { broker, pipeline, certificates, traces, logger } = options;
  const decode = (payload: Buffer, format: Format) => decodeRequest(payload, format, options.json);

  const answer = (
    req: ServiceRequest,
    format: Format,
    suffix: 'accepted' | 'rejected',
    body: Record<string, unknown>,
  ) => {
    broker.deliverTo(req.publisher.clientId, {
      topic: `${req.topic}/${suffix}`,
      payload: encodeAnswer(body, format),
      qos: req.qos === 0 ? 0 : 1,
      retain: false,
    });
  };
  const reject = (req: ServiceRequest, format: Format, r: Refusal) =>
    answer(req, format, 'rejected', { ...r.mqtt });

  const claimOf = (req: ServiceRequest) =>
    req.publisher.principal.kind === 'certificate' ? req.publisher.principal.id : undefined;

  async function certificate(req: ServiceRequest, op: 'create' | 'create-from-csr', format: Format) {
    const trace = traces.begin('certificate', { clientId: req.publisher.clientId });
    trace.step('request', { topic: req.topic, claimCertificateId: claimOf(req) });
    try {
      const body = decode(req.payload, format);
      const made =
        op === 'create'
          ? await certificates.createKeysAndCertificate({
              claimCertificateId: claimOf(req),
              clientId: req.publisher.clientId,
            })
          : await certificates.createFromCsr(body.certificateSigningRequest, {
              claimCertificateId: claimOf(req),
              clientId: req.publisher.clientId,
            });
      trace.note({ certificateId: made.certificateId });
      trace.step('certificate', { certificateId: made.certificateId, status: 'PENDING_ACTIVATION' });
      trace.finish('accepted');
      answer(req, format, 'accepted', {
        certificateId: made.certificateId,
        certificatePem: made.certificatePem,
        ...(made.privateKey !== undefined ? { privateKey: made.privateKey } : {}),
        certificateOwnershipToken: made.ownershipToken,
      });
    } catch (err) {
      const e: ThingsteadError = isThingsteadError(err) ? err : E.ProvisioningInternal();
      if (!isThingsteadError(err))
        logger.warn({ err, topic: req.topic }, 'provisioning certificate request failed');
      const reason =
        e.kind === 'ProvisioningPayload'
          ? 'payload_invalid'
          : e.kind.startsWith('Csr')
            ? 'csr_invalid'
            : isThingsteadError(err)
              ? 'certificate_invalid'
              : 'internal';
      const r = refusal(reason, e);
      trace.step('refused', { reason, message: e.message }, false);
      trace.finish('rejected', { reason, message: e.message });
      reject(req, format, r);
    }
  }

  async function register(req: ServiceRequest, templateName: string, format: Format) {
    let body: Record<string, unknown>;
    let parameters: Record<string, string>;
    let token: unknown;
    try {
      body = decode(req.payload, format);
      parameters = stringMap(body.parameters, 'parameters', format);
      token = body.certificateOwnershipToken;
      if (typeof token !== 'string' || token === '')
        throw E.ProvisioningPayload({
          format: format.toUpperCase(),
          problem: 'certificateOwnershipToken is required',
        });
    } catch (err) {
      const e = isThingsteadError(err) ? err : E.ProvisioningInternal();
      const trace = traces.begin('mqtt', { templateName, clientId: req.publisher.clientId });
      trace.step('refused', { reason: 'payload_invalid', message: e.message }, false);
      trace.finish('rejected', { reason: 'payload_invalid', message: e.message });
      return reject(req, format, refusal('payload_invalid', e));
    }
    const outcome = await pipeline.provision({
      flow: 'mqtt',
      template: { name: templateName },
      templateType: 'FLEET_PROVISIONING',
      parameters,
      ownershipToken: token,
      claimCertificateId: claimOf(req),
      clientId: req.publisher.clientId,
    });
    if (!outcome.ok) return reject(req, format, outcome.refusal);
    answer(req, format, 'accepted', {
      deviceConfiguration: outcome.deviceConfiguration,
      ...(outcome.thingName !== undefined ? { thingName: outcome.thingName } : {}),
    });
  }

  return {
    name: 'provisioning',
    filters: PROVISIONING_FILTERS,
    queue: { maxItems: options.queue.maxItems, concurrency: options.queue.concurrency },
    onDrop(req) {
      const target = parseProvisioningTopic(req.topic);
      if (!target) return;
      reject(
        req,
        target.format,
        refusal('throttled', E.ProvisioningThrottled({ limit: options.queue.maxItems })),
      );
    },
    async handle(req) {
      const target = parseProvisioningTopic(req.topic);
      if (!target) return;
      if (target.op === 'provision') return register(req, target.templateName, target.format);
      return certificate(req, target.op, target.format);
    },
  };
}
