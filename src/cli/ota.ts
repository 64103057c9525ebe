import { createHash, createHmac } from 'node:crypto';
import {
  chmodSync,
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Command } from 'commander';
import { encodePath, type SignedFetchOptions } from '../api/index.js';
import {
  digestFile,
  generateSigningKey,
  keyIdOf,
  OTA_OPERATION,
  signFile,
  SIGNATURE_ALGORITHM,
} from '../agent/index.js';
import { loadConfig } from '../config/index.js';
import { canonicalQuery, canonicalUri, signingKey, uriEncode } from '../sigv4/index.js';
import {
  CliError,
  call,
  connectionOptions,
  listAll,
  printRecord,
  printTable,
  withConnection,
  type CommandFlags,
} from './connection.js';

/**
 * `thingstead ota upload|files|keygen|sign|deploy|streams`: firmware files, signing keys and whole updates.
 * The upload streams the image to `PUT /ota/files` under a SigV4 presigned query (admin key) binding its
 * SHA-256 and size; signing happens here, with the operator's private key, never on the platform; `deploy`
 * uploads (when needed), signs, optionally creates an MQTT stream, and creates the job with rollout and
 * abort configs, printing each step.
 */

const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');
const amzDate = (t: number) =>
  new Date(t)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

/** A SigV4 presigned URL (query auth, signing name `iot`) for `method path?query`. */
export function presignUrl(
  conn: SignedFetchOptions,
  method: string,
  path: string,
  params: Record<string, string>,
  expiresSec = 900,
): string {
  const url = new URL(conn.endpoint);
  const date = amzDate(Date.now());
  const scope = `${date.slice(0, 8)}/${conn.region}/iot/aws4_request`;
  const all: Record<string, string> = {
    ...params,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${conn.accessKeyId}/${scope}`,
    'X-Amz-Date': date,
    'X-Amz-Expires': String(expiresSec),
    'X-Amz-SignedHeaders': 'host',
  };
  const query = Object.entries(all)
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .join('&');
  const canonical = [
    method,
    canonicalUri(path),
    canonicalQuery(query),
    `host:${url.host}\n`,
    'host',
    EMPTY_SHA256,
  ].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonical).digest('hex')].join(
    '\n',
  );
  const signature = createHmac(
    'sha256',
    signingKey(conn.secretAccessKey, date.slice(0, 8), conn.region, 'iot'),
  )
    .update(toSign)
    .digest('hex');
  return `${url.origin}${path}?${query}&X-Amz-Signature=${signature}`;
}

/** Upload a file (streamed) unless the platform holds it already; returns the file record. */
export async function uploadFile(
  conn: SignedFetchOptions,
  file: string,
  meta: { sha256: string; size: number; name?: string; version?: string },
): Promise<{ record: Record<string, unknown>; uploaded: boolean }> {
  try {
    return { record: await call(conn, 'GET', `/ota/files/${meta.sha256}`), uploaded: false };
  } catch (err) {
    if (!(err instanceof CliError) || !err.message.startsWith('ResourceNotFoundException')) throw err;
  }
  const url = presignUrl(conn, 'PUT', '/ota/files', {
    sha256: meta.sha256,
    size: String(meta.size),
    ...(meta.name ? { name: meta.name } : {}),
    ...(meta.version ? { version: meta.version } : {}),
  });
  const res = await fetch(url, {
    method: 'PUT',
    body: createReadStream(file),
    headers: { 'content-length': String(meta.size), 'content-type': 'application/octet-stream' },
    duplex: 'half',
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & { message?: string };
  if (!res.ok)
    throw new CliError(
      `${res.headers.get('x-amzn-errortype') ?? res.status}: ${body.message ?? res.statusText}`,
    );
  return { record: body, uploaded: true };
}

function dataDirOf(flags: CommandFlags): string {
  return resolve(
    loadConfig({ env: process.env, overrides: flags.dataDir ? { dataDir: flags.dataDir } : {} }).dataDir,
  );
}

/** The signing key: --key, else the newest in <data dir>/ota-signing. */
function signingKeyFile(flags: CommandFlags): string {
  if (flags.key) return String(flags.key);
  const dir = join(dataDirOf(flags), 'ota-signing');
  const keys = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.key.pem')) : [];
  if (!keys.length)
    throw new CliError(`no signing key in ${dir}: run \`thingstead ota keygen\` or pass --key FILE`);
  return join(dir, keys.sort((a, b) => statSync(join(dir, b)).mtimeMs - statSync(join(dir, a)).mtimeMs)[0]!);
}

function publicOf(keyFile: string): string {
  const pub = keyFile.replace(/\.key\.pem$/, '.pub.pem');
  if (existsSync(pub)) return readFileSync(pub, 'utf8');
  throw new CliError(`no public key beside ${keyFile} (expected ${pub})`);
}

/** Sign an image with a key file: what the job document carries. */
export async function signImage(image: string, keyFile: string) {
  const privateKeyPem = readFileSync(keyFile, 'utf8');
  const signed = await signFile(image, privateKeyPem);
  return { ...signed, signingKeyId: keyIdOf(publicOf(keyFile)), signatureAlgorithm: SIGNATURE_ALGORITHM };
}

const num = (v: unknown, name: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError(`${name} must be a number`);
  return n;
};

async function groupArn(conn: SignedFetchOptions, to: string): Promise<string> {
  if (to.startsWith('arn:')) return to;
  if (to.startsWith('thing/'))
    return (await call(conn, 'GET', `/things/${encodePath(to.slice(6))}`)).thingArn as string;
  const name = to.startsWith('group/') ? to.slice(6) : to;
  return (await call(conn, 'GET', `/thing-groups/${encodePath(name)}`)).thingGroupArn as string;
}

export function registerOta(program: Command): void {
  const ota = connectionOptions(
    new Command('ota').description('Firmware updates: files, signing keys, deployments.'),
  );

  ota
    .command('keygen')
    .description(
      'Make an ECDSA P-256 signing key pair (private key 0600) in <data dir>/ota-signing or --out.',
    )
    .option('--out <dir>', 'where to write <keyId>.key.pem and <keyId>.pub.pem')
    .action(async (_o: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<CommandFlags>();
      const dir = resolve(flags.out ? String(flags.out) : join(dataDirOf(flags), 'ota-signing'));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const k = generateSigningKey();
      const priv = join(dir, `${k.keyId}.key.pem`);
      const pub = join(dir, `${k.keyId}.pub.pem`);
      writeFileSync(priv, k.privateKeyPem, { mode: 0o600, flag: 'wx' });
      chmodSync(priv, 0o600);
      writeFileSync(pub, k.publicKeyPem, { mode: 0o644 });
      if (flags.json) console.log(JSON.stringify({ keyId: k.keyId, privateKey: priv, publicKey: pub }));
      else
        printRecord({
          keyId: k.keyId,
          privateKey: `${priv} (0600: keep it off devices)`,
          publicKey: `${pub} (give it to devices: thingstead agent --trusted-key)`,
        });
    });

  ota
    .command('upload <file>')
    .description('Upload a firmware image (stored by SHA-256; uploading the same bytes again is a no-op).')
    .option('--version <version>', 'the firmware version the image carries')
    .option('--name <name>', 'a name to find it by (default: the file name)')
    .action(
      withConnection(async (conn, flags, file) => {
        const { sha256, size } = await digestFile(file);
        const r = await uploadFile(conn, file, {
          sha256,
          size,
          name: flags.name ?? basename(file),
          version: flags.version,
        });
        if (flags.json) console.log(JSON.stringify(r.record));
        else printRecord({ ...r.record, uploaded: r.uploaded ? 'yes' : 'no (already stored)' });
      }),
    );

  ota
    .command('files')
    .description('List stored firmware files.')
    .action(
      withConnection(async (conn, flags) => {
        const files = await listAll(conn, '/ota/files', 'files', {}, 10_000);
        if (flags.json) console.log(JSON.stringify(files));
        else printTable(files, ['sha256', 'size', 'name', 'version']);
      }),
    );

  ota
    .command('sign <image>')
    .description('Print the signature block of an image (sha256, size, signature, signingKeyId).')
    .option('--key <file>', 'private key (default: the newest in <data dir>/ota-signing)')
    .action(async (image: string, _o: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<CommandFlags>();
      console.log(JSON.stringify(await signImage(image, signingKeyFile(flags)), null, 2));
    });

  ota
    .command('deploy <image>')
    .description('Upload (if needed), sign and roll out an image to a thing group as one job.')
    .requiredOption('--to <group>', 'target: a thing group name, group/NAME, thing/NAME or an ARN')
    .requiredOption('--version <version>', 'the firmware version (devices refuse one not newer than theirs)')
    .option('--key <file>', 'signing private key (default: the newest in <data dir>/ota-signing)')
    .option(
      '--rate <perMinute>',
      'executions started per minute (jobExecutionsRolloutConfig.maximumPerMinute)',
    )
    .option('--abort-after <percent>', 'cancel the rollout once this % of finished devices failed')
    .option('--abort-min <n>', 'minimum finished devices before the abort threshold applies', '1')
    .option('--via <https|mqtt|both>', 'how devices fetch the image', 'https')
    .option(
      '--expires <seconds>',
      'signed URL lifetime after each delivery (presignedUrlConfig.expiresInSec)',
      '3600',
    )
    .option('--job-id <id>', 'job id (default ota-<version>-<sha256 prefix>)')
    .option('--continuous', 'also update devices that join the group later')
    .option('--wait', 'follow the rollout until the job ends')
    .action(
      withConnection(async (conn, flags, image) => {
        const say = (line: string) => {
          if (!flags.json) console.log(line);
        };
        const via = String(flags.via);
        if (!['https', 'mqtt', 'both'].includes(via)) throw new CliError('--via must be https, mqtt or both');
        const keyFile = signingKeyFile(flags);
        const signed = await signImage(image, keyFile);
        say(
          `signed     ${basename(image)}: ${signed.size} bytes, sha256 ${signed.sha256}, key ${signed.signingKeyId}`,
        );
        const up = await uploadFile(conn, image, {
          sha256: signed.sha256,
          size: signed.size,
          name: basename(image),
          version: flags.version,
        });
        say(
          `${up.uploaded ? 'uploaded ' : 'stored   '}  ${signed.sha256}${up.uploaded ? '' : ' (already on the platform)'}`,
        );
        const safeVersion = String(flags.version).replace(/[^a-zA-Z0-9_-]/g, '-');
        const jobId = String(flags.jobId ?? `ota-${safeVersion}-${signed.sha256.slice(0, 12)}`).slice(0, 64);
        let stream: { streamId: string; fileId: number } | undefined;
        if (via !== 'https') {
          const streamId = jobId;
          try {
            await call(conn, 'POST', `/streams/${encodePath(streamId)}`, {
              body: {
                description: `firmware ${flags.version}`,
                files: [{ fileId: 0, s3Location: { bucket: 'thingstead', key: signed.sha256 } }],
              },
            });
            say(`stream     ${streamId} (MQTT file delivery, file 0)`);
          } catch (err) {
            if (!(err instanceof CliError) || !err.message.startsWith('ResourceAlreadyExistsException'))
              throw err;
            say(`stream     ${streamId} (exists)`);
          }
          stream = { streamId, fileId: 0 };
        }
        const document = {
          operation: OTA_OPERATION,
          ota: {
            version: String(flags.version),
            size: signed.size,
            sha256: signed.sha256,
            signature: signed.signature,
            signatureAlgorithm: signed.signatureAlgorithm,
            signingKeyId: signed.signingKeyId,
            name: basename(image),
            ...(via !== 'mqtt'
              ? { url: `\${aws:iot:s3-presigned-url:https://s3.amazonaws.com/thingstead/${signed.sha256}}` }
              : {}),
            ...(stream ? { stream } : {}),
          },
        };
        const target = await groupArn(conn, String(flags.to));
        const job = await call(conn, 'PUT', `/jobs/${encodePath(jobId)}`, {
          body: {
            targets: [target],
            document: JSON.stringify(document),
            description: `firmware ${flags.version} (${basename(image)})`,
            targetSelection: flags.continuous ? 'CONTINUOUS' : 'SNAPSHOT',
            presignedUrlConfig: { expiresInSec: num(flags.expires, '--expires') },
            ...(flags.rate
              ? { jobExecutionsRolloutConfig: { maximumPerMinute: num(flags.rate, '--rate') } }
              : {}),
            ...(flags.abortAfter
              ? {
                  abortConfig: {
                    criteriaList: [
                      {
                        failureType: 'ALL',
                        action: 'CANCEL',
                        thresholdPercentage: num(String(flags.abortAfter).replace(/%$/, ''), '--abort-after'),
                        minNumberOfExecutedThings: num(flags.abortMin, '--abort-min'),
                      },
                    ],
                  },
                }
              : {}),
          },
        });
        say(
          `job        ${job.jobId} for ${target}${flags.rate ? `, ${flags.rate}/min` : ''}${flags.abortAfter ? `, abort after ${flags.abortAfter}% failed` : ''}`,
        );
        if (flags.json)
          console.log(
            JSON.stringify({ jobId: job.jobId, jobArn: job.jobArn, ...signed, stream: stream?.streamId }),
          );
        if (!flags.wait) return;
        let last = '';
        for (;;) {
          const { job: j } = await call(conn, 'GET', `/jobs/${encodePath(jobId)}`);
          const d = (j.jobProcessDetails ?? {}) as Record<string, number>;
          const line = `progress   ${j.status}: queued ${d.numberOfQueuedThings ?? 0}, in progress ${d.numberOfInProgressThings ?? 0}, succeeded ${d.numberOfSucceededThings ?? 0}, failed ${(d.numberOfFailedThings ?? 0) + (d.numberOfRejectedThings ?? 0) + (d.numberOfTimedOutThings ?? 0)}, canceled ${d.numberOfCanceledThings ?? 0}`;
          if (line !== last) say((last = line));
          if (j.status === 'COMPLETED' || j.status === 'CANCELED') return;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }),
    );

  const streams = ota
    .command('streams')
    .description('MQTT file-delivery streams (aws iot list-streams, ...).');
  streams.command('list').action(
    withConnection(async (conn, flags) => {
      const list = await listAll(conn, '/streams', 'streams', {}, 10_000);
      if (flags.json) console.log(JSON.stringify(list));
      else printTable(list, ['streamId', 'streamVersion', 'description']);
    }),
  );
  streams.command('delete <streamId>').action(
    withConnection(async (conn, _flags, streamId) => {
      await call(conn, 'DELETE', `/streams/${encodePath(streamId)}`);
      console.log(`deleted stream ${streamId}`);
    }),
  );
  program.addCommand(ota);
}
