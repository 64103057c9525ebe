/**
 * Fleet provisioning by claim, the device side (reference §8.4): a gateway that has no certificate of its
 * own connects with the shared claim certificate, asks `$aws/certificates/create/json` for a new key and
 * certificate, then `$aws/provisioning-templates/{template}/provision/json` to register itself with the
 * ownership token, and keeps the result in its identity folder for every later start.
 *
 * Contract:
 * - Subscribes to the exact `accepted` and `rejected` topics before each request (as the AWS IoT Device SDK
 *   v2 does; there is no clientToken) and allows one outstanding request per operation.
 * - A `rejected` answer (`{statusCode, errorCode, errorMessage}`) or no answer within `timeoutMs` fails with
 *   a ProvisioningError naming the step, the code and what to check.
 * - Files written: `<dir>/certificate.pem`, `<dir>/private.key` (mode 0600), `<dir>/identity.json`
 *   (`{thingName, certificateId, deviceConfiguration, provisionedAt}`); the private key is written before the
 *   thing is registered, so a crash between the steps leaves a key that is re-requested, never a lost one.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

export interface Identity {
  readonly thingName: string;
  readonly certificateId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly deviceConfiguration: Record<string, string>;
}

export interface ClaimOptions {
  /** `mqtts://host:port`. */
  readonly url: string;
  readonly ca?: string | Buffer | undefined;
  readonly claimCert: string | Buffer;
  readonly claimKey: string | Buffer;
  readonly templateName: string;
  /** Template parameters (e.g. `{ SerialNumber: "gw-0042" }`). */
  readonly parameters: Record<string, string>;
  /** The identity folder. */
  readonly dir: string;
  /** MQTT client id for the claim connection (default `claim-<first parameter value>`). */
  readonly clientId?: string;
  readonly timeoutMs?: number;
}

export class ProvisioningError extends Error {
  constructor(
    readonly step: 'connect' | 'create-certificate' | 'register-thing',
    message: string,
    readonly errorCode?: string,
  ) {
    super(message);
  }
}

/** The identity stored in `dir`, or null when the gateway has not been provisioned yet. */
export function loadIdentity(dir: string): Identity | null {
  const idFile = join(dir, 'identity.json');
  if (!existsSync(idFile) || !existsSync(join(dir, 'certificate.pem'))) return null;
  const id = JSON.parse(readFileSync(idFile, 'utf8')) as {
    thingName: string;
    certificateId: string;
    deviceConfiguration?: Record<string, string>;
  };
  return {
    thingName: id.thingName,
    certificateId: id.certificateId,
    certPem: readFileSync(join(dir, 'certificate.pem'), 'utf8'),
    keyPem: readFileSync(join(dir, 'private.key'), 'utf8'),
    deviceConfiguration: id.deviceConfiguration ?? {},
  };
}

/** One request/response exchange on reserved provisioning topics. */
async function exchange(
  client: MqttClient,
  topic: string,
  body: Record<string, unknown>,
  step: ProvisioningError['step'],
  timeoutMs: number,
): Promise<Record<string, any>> {
  const accepted = `${topic}/accepted`;
  const rejected = `${topic}/rejected`;
  try {
    await client.subscribeAsync([accepted, rejected], { qos: 1 });
  } catch (err) {
    throw new ProvisioningError(
      step,
      `${step}: subscribing to ${accepted} was refused (${(err as Error).message}): does the claim certificate's policy cover this template's topics?`,
    );
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.removeListener('message', onMessage);
      reject(
        new ProvisioningError(
          step,
          `${step}: no answer on ${accepted} within ${timeoutMs} ms (is fleet provisioning enabled on the platform, and does the claim policy allow ${topic} and its replies?)`,
        ),
      );
    }, timeoutMs);
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== accepted && t !== rejected) return;
      clearTimeout(timer);
      client.removeListener('message', onMessage);
      let reply: Record<string, any>;
      try {
        reply = JSON.parse(payload.toString('utf8')) as Record<string, any>;
      } catch {
        reject(new ProvisioningError(step, `${step}: the answer on ${t} is not JSON`));
        return;
      }
      if (t === rejected)
        reject(
          new ProvisioningError(
            step,
            `${step} rejected: ${reply.statusCode ?? '?'} ${reply.errorCode ?? ''}: ${reply.errorMessage ?? ''}`.trim(),
            typeof reply.errorCode === 'string' ? reply.errorCode : undefined,
          ),
        );
      else resolve(reply);
    };
    client.on('message', onMessage);
    client.publish(topic, JSON.stringify(body), { qos: 1 }, (err) => {
      if (err) {
        clearTimeout(timer);
        client.removeListener('message', onMessage);
        reject(new ProvisioningError(step, `${step}: publish to ${topic} failed: ${err.message}`));
      }
    });
  });
}

/**
 * Provision this gateway by claim, unless `dir` already holds an identity (then that is returned).
 * @example const id = await provisionByClaim({ url, ca, claimCert, claimKey, templateName: 'gateways', parameters: { SerialNumber: 'gw-7' }, dir });
 */
export async function provisionByClaim(options: ClaimOptions): Promise<Identity> {
  const existing = loadIdentity(options.dir);
  if (existing) return existing;
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const timeoutMs = options.timeoutMs ?? 15_000;
  const clientId = options.clientId ?? `claim-${Object.values(options.parameters)[0] ?? Date.now()}`;
  let client: MqttClient;
  try {
    client = await mqtt.connectAsync(options.url, {
      clientId,
      protocolVersion: 5,
      ca: options.ca,
      cert: options.claimCert,
      key: options.claimKey,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      clean: true,
      // As the uplink (upstream.ts): no 6 MB table of packet-id buffers, which would stay after this client.
      writeCache: false,
    });
  } catch (err) {
    throw new ProvisioningError(
      'connect',
      `connect with the claim certificate to ${options.url} failed: ${(err as Error).message} (is the claim certificate ACTIVE with a policy allowing iot:Connect for client ${clientId}?)`,
    );
  }
  try {
    const created = await exchange(
      client,
      '$aws/certificates/create/json',
      {},
      'create-certificate',
      timeoutMs,
    );
    for (const k of ['certificateId', 'certificatePem', 'privateKey', 'certificateOwnershipToken'])
      if (typeof created[k] !== 'string')
        throw new ProvisioningError('create-certificate', `create-certificate: the answer has no ${k}`);
    writeFileSync(join(options.dir, 'certificate.pem'), created.certificatePem as string, { mode: 0o600 });
    writeFileSync(join(options.dir, 'private.key'), created.privateKey as string, { mode: 0o600 });
    const registered = await exchange(
      client,
      `$aws/provisioning-templates/${options.templateName}/provision/json`,
      { certificateOwnershipToken: created.certificateOwnershipToken, parameters: options.parameters },
      'register-thing',
      timeoutMs,
    );
    if (typeof registered.thingName !== 'string')
      throw new ProvisioningError('register-thing', 'register-thing: the answer has no thingName');
    const deviceConfiguration = (registered.deviceConfiguration ?? {}) as Record<string, string>;
    writeFileSync(
      join(options.dir, 'identity.json'),
      JSON.stringify(
        {
          thingName: registered.thingName,
          certificateId: created.certificateId,
          deviceConfiguration,
          provisionedAt: new Date().toISOString(),
        },
        null,
        2,
      ) + '\n',
      { mode: 0o600 },
    );
    return {
      thingName: registered.thingName,
      certificateId: created.certificateId as string,
      certPem: created.certificatePem as string,
      keyPem: created.privateKey as string,
      deviceConfiguration,
    };
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}
