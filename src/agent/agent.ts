/**
 * The reference device agent (`thingstead agent`; reusable by a gateway): it runs firmware jobs.
 *
 * Contract, per job (reference §8.3 for the jobs topics):
 * 1. Connects with the device certificate (mutual TLS), subscribes to `jobs/notify-next` and its reply and
 *    stream topics, and asks `start-next` on connect and whenever notify-next names an execution. Jobs run
 *    one at a time; an IN_PROGRESS execution (a restart) is resumed.
 * 2. Refuses, before downloading, a document it cannot run (REJECTED) and a version not newer than the
 *    installed one (FAILED, `DOWNGRADE`: anti-rollback).
 * 3. Downloads over HTTPS (ranges, resuming) or MQTT file delivery, reporting `statusDetails.progress`.
 * 4. Verifies size, SHA-256 and the ECDSA signature with the trusted key named by `signingKeyId`, in that
 *    order; any mismatch is FAILED with `failure` (SIZE_MISMATCH, SHA256_MISMATCH, UNKNOWN_SIGNING_KEY,
 *    SIGNATURE_INVALID) and a `reason` naming expected and actual values.
 * 5. Runs the install hook; exit 0 is SUCCEEDED (the new version recorded in `<workDir>/state.json`), else
 *    FAILED (`INSTALL_FAILED`) after running the rollback hook (`rolledBack` says whether it succeeded).
 * Every update carries the whole statusDetails map (AWS replaces it), values cut to 1024 characters.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { compareVersions, OTA_OPERATION, parseOtaDocument, type OtaDocument } from './document.js';
import { DownloadError, downloadHttps, downloadStream, type StreamDownload } from './download.js';
import { runHook } from './hooks.js';
import { digestFile, keyIdOf, verifyFile } from './signing.js';

export interface AgentOptions {
  /** `mqtts://host:port` (mutual TLS) or `mqtt://` for a dev broker. */
  readonly mqttUrl: string;
  readonly thingName: string;
  /** Defaults to the thing name (what onboard's starter policy allows). */
  readonly clientId?: string;
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Public keys (PEM) whose signatures the agent accepts. */
  readonly trustedKeys: readonly string[];
  /** Downloads and `state.json` (the installed version). */
  readonly workDir: string;
  readonly installCommand: string;
  readonly rollbackCommand?: string;
  /** The installed version when `state.json` has none (default 0.0.0). */
  readonly initialVersion?: string;
  /** Prefer MQTT streams over HTTPS when a document offers both. */
  readonly preferStream?: boolean;
  readonly streamFormat?: 'json' | 'cbor';
  readonly blockSize?: number;
  /** Progress is reported each time the download crosses another `progressPercent` (default 25). */
  readonly progressPercent?: number;
  readonly hookTimeoutMs?: number;
  /** Events for the operator (the CLI prints them). */
  readonly log?: (event: string, fields?: Record<string, unknown>) => void;
  /**
   * Share this connection instead of opening one (a gateway's uplink: one client id per thing). It must be
   * MQTT 5 and reconnect by itself; `close()` leaves it open.
   */
  readonly client?: MqttClient;
}

export interface Agent {
  readonly client: MqttClient;
  /** The installed version. */
  version(): string;
  /** Resolves when no job is running and none is waiting. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

type Details = Record<string, string>;

class JobFailure extends Error {
  constructor(
    readonly failure: string,
    message: string,
    readonly status: 'FAILED' | 'REJECTED' = 'FAILED',
    readonly extra: Details = {},
  ) {
    super(message);
  }
}

const cut = (d: Details): Details =>
  Object.fromEntries(Object.entries(d).map(([k, v]) => [k, (v === '' ? '-' : v).slice(0, 1024)]));

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const thing = options.thingName;
  const log = options.log ?? (() => undefined);
  const format = options.streamFormat ?? 'json';
  mkdirSync(options.workDir, { recursive: true, mode: 0o700 });
  const stateFile = join(options.workDir, 'state.json');
  const readVersion = () =>
    existsSync(stateFile)
      ? ((JSON.parse(readFileSync(stateFile, 'utf8')) as { version?: string }).version ?? '0.0.0')
      : (options.initialVersion ?? '0.0.0');
  let installed = readVersion();
  const trusted = new Map(options.trustedKeys.map((pem) => [keyIdOf(pem), pem]));
  const jobs = `$aws/things/${thing}/jobs`;

  const client =
    options.client ??
    (await mqtt.connectAsync(options.mqttUrl, {
      clientId: options.clientId ?? thing,
      protocolVersion: 5,
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      reconnectPeriod: 1000,
      clean: true,
    }));
  const pending = new Map<string, (topic: string, body: any) => void>();
  const streams = new Map<string, StreamDownload>();
  let token = 0;

  client.on('message', (topic, payload) => {
    const s = /^\$aws\/things\/[^/]+\/streams\/([^/]+)\/(data|rejected)\/(json|cbor)$/.exec(topic);
    if (s) {
      streams.get(s[1]!)?.onMessage(s[2] as 'data' | 'rejected', payload);
      return;
    }
    let body: any;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    if (topic === `${jobs}/notify-next`) {
      if (body.execution) kick();
      return;
    }
    const waiter = typeof body.clientToken === 'string' ? pending.get(body.clientToken) : undefined;
    if (waiter) waiter(topic, body);
  });
  await client.subscribeAsync(
    [
      `${jobs}/notify-next`,
      `${jobs}/start-next/+`,
      `${jobs}/+/update/+`,
      `$aws/things/${thing}/streams/+/data/${format}`,
      `$aws/things/${thing}/streams/+/rejected/${format}`,
    ],
    { qos: 1 },
  );

  /** Publish a jobs request and wait for its accepted/rejected reply (by clientToken). */
  function request(topic: string, body: Record<string, unknown>, timeoutMs = 15_000): Promise<any> {
    const clientToken = `${thing}-${Date.now()}-${++token}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(clientToken);
        reject(new Error(`no reply on ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(clientToken, (replyTopic, reply) => {
        clearTimeout(timer);
        pending.delete(clientToken);
        if (replyTopic.endsWith('/rejected'))
          reject(new Error(`${topic} rejected: ${reply.code}: ${reply.message}`));
        else resolve(reply);
      });
      client.publish(topic, JSON.stringify({ ...body, clientToken }), { qos: 1 }, (err) => {
        if (err) {
          clearTimeout(timer);
          pending.delete(clientToken);
          reject(err);
        }
      });
    });
  }
  const update = (jobId: string, status: string, details: Details) =>
    request(`${jobs}/${jobId}/update`, { status, statusDetails: cut(details) });

  async function runOta(jobId: string, doc: OtaDocument) {
    const base = { version: doc.version, installedVersion: installed };
    if (compareVersions(doc.version, installed) <= 0)
      throw new JobFailure(
        'DOWNGRADE',
        `version ${doc.version} is not newer than the installed ${installed} (anti-rollback)`,
      );
    const file = join(options.workDir, `${doc.sha256}.img`);
    const step = options.progressPercent ?? 25;
    let reported = 0;
    const progress = (bytes: number) => {
      const pct = doc.size > 0 ? Math.floor((bytes * 100) / doc.size) : 100;
      if (pct < reported + step || pct >= 100) return;
      reported = pct - (pct % step);
      update(jobId, 'IN_PROGRESS', { ...base, step: 'downloading', progress: `${reported}%` }).catch(
        (err: unknown) => log('progress update failed', { jobId, error: (err as Error).message }),
      );
    };
    const useStream = doc.stream && (options.preferStream || !doc.url);
    await update(jobId, 'IN_PROGRESS', {
      ...base,
      step: 'downloading',
      progress: '0%',
      via: useStream ? 'mqtt' : 'https',
    });
    if (!existsSync(file)) {
      try {
        if (useStream) {
          const s = doc.stream;
          const d = downloadStream({
            client,
            thingName: thing,
            streamId: s.streamId,
            fileId: s.fileId,
            size: doc.size,
            file,
            format,
            blockSize: options.blockSize ?? 65_536,
            progress,
          });
          streams.set(s.streamId, d);
          try {
            await d.done;
          } finally {
            streams.delete(s.streamId);
          }
        } else {
          await downloadHttps({
            url: doc.url!,
            file,
            size: doc.size,
            tls: { ca: options.ca, cert: options.cert, key: options.key },
            progress,
          });
        }
      } catch (err) {
        if (err instanceof DownloadError) throw new JobFailure(err.failure, err.message);
        throw new JobFailure('DOWNLOAD_FAILED', (err as Error).message);
      }
    }
    await update(jobId, 'IN_PROGRESS', { ...base, step: 'verifying', progress: '100%' });
    const got = await digestFile(file);
    const reject = (failure: string, reason: string) => {
      rmSync(file, { force: true });
      return new JobFailure(failure, reason);
    };
    if (got.size !== doc.size)
      throw reject(
        'SIZE_MISMATCH',
        `size mismatch: the document says ${doc.size} bytes, the image has ${got.size}`,
      );
    if (got.sha256 !== doc.sha256)
      throw reject(
        'SHA256_MISMATCH',
        `sha256 mismatch: the document says ${doc.sha256}, the image hashes to ${got.sha256}`,
      );
    const key = trusted.get(doc.signingKeyId);
    if (!key)
      throw reject(
        'UNKNOWN_SIGNING_KEY',
        `signing key ${doc.signingKeyId} is not one this device trusts (${[...trusted.keys()].join(', ') || 'none'})`,
      );
    if (!(await verifyFile(file, key, doc.signature)))
      throw reject(
        'SIGNATURE_INVALID',
        `signature invalid: it does not verify over the image (sha256 ${got.sha256}) with key ${doc.signingKeyId}`,
      );

    await update(jobId, 'IN_PROGRESS', { ...base, step: 'installing', progress: '100%' });
    const env = {
      THINGSTEAD_OTA_FILE: file,
      THINGSTEAD_OTA_VERSION: doc.version,
      THINGSTEAD_OTA_SHA256: doc.sha256,
      THINGSTEAD_OTA_PREVIOUS_VERSION: installed,
      THINGSTEAD_OTA_JOB_ID: jobId,
    };
    const result = await runHook(options.installCommand, env, options.hookTimeoutMs);
    if (result.code !== 0) {
      let rolledBack = 'no rollback hook';
      if (options.rollbackCommand) {
        const rb = await runHook(options.rollbackCommand, env, options.hookTimeoutMs);
        rolledBack = rb.code === 0 ? 'true' : `false (exit ${rb.code})`;
      }
      throw new JobFailure(
        'INSTALL_FAILED',
        `install hook exited with ${result.code === null ? 'a signal or timeout' : `code ${result.code}`}${result.output ? `: ${result.output.split('\n').slice(-3).join(' | ')}` : ''}`,
        'FAILED',
        { rolledBack },
      );
    }
    const previous = installed;
    installed = doc.version;
    writeFileSync(stateFile, JSON.stringify({ version: installed, sha256: doc.sha256, jobId }) + '\n');
    rmSync(file, { force: true });
    await update(jobId, 'SUCCEEDED', { version: doc.version, previousVersion: previous, sha256: doc.sha256 });
    log('installed', { jobId, version: doc.version, previous });
  }

  async function runOne(): Promise<boolean> {
    const reply = await request(`${jobs}/start-next`, {});
    const e = reply.execution as { jobId: string; jobDocument: unknown } | undefined;
    if (!e) return false;
    log('job', { jobId: e.jobId });
    const doc = parseOtaDocument(e.jobDocument);
    try {
      if (typeof doc === 'string')
        throw new JobFailure(
          (e.jobDocument as { operation?: unknown })?.operation === OTA_OPERATION
            ? 'BAD_DOCUMENT'
            : 'UNSUPPORTED',
          doc,
          'REJECTED',
        );
      await runOta(e.jobId, doc);
    } catch (err) {
      const f = err instanceof JobFailure ? err : new JobFailure('AGENT_ERROR', (err as Error).message);
      log('job failed', { jobId: e.jobId, failure: f.failure, reason: f.message });
      await update(e.jobId, f.status, {
        failure: f.failure,
        reason: f.message,
        ...(typeof doc !== 'string' ? { version: doc.version } : {}),
        installedVersion: installed,
        ...f.extra,
      }).catch((ue: unknown) =>
        log('failure report failed', { jobId: e.jobId, error: (ue as Error).message }),
      );
    }
    return true;
  }

  let running: Promise<void> | null = null;
  let again = false;
  function kick() {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      do {
        again = false;
        try {
          while (await runOne()) {
            // next job
          }
        } catch (err) {
          log('job loop error', { error: (err as Error).message });
        }
      } while (again);
    })().finally(() => {
      running = null;
    });
  }
  client.on('connect', () => kick());
  kick();

  return {
    client,
    version: () => installed,
    async idle() {
      while (running) await running;
    },
    async close() {
      if (!options.client) await client.endAsync(true);
    },
  };
}
