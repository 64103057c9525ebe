import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StartedContext } from '../api/index.js';
import type { Config } from '../config/index.js';
import type { Broker } from '../mqtt/index.js';
import type { Logger } from '../observability/index.js';
import type { Database } from '../store/index.js';
import { otaOperations } from './api.js';
import { createBlobStore } from './files.js';
import { otaHttpRoutes, serveDownload } from './http.js';
import { streamsMqttService } from './mqtt.js';
import { createOtaService, type OtaService } from './service.js';
import { createUrlSigner, loadUrlKey, type UrlSigner } from './signed-url.js';
import { createOtaStore } from './store.js';

export interface OtaOptions {
  readonly db: Database;
  /** `<dataDir>/files/` holds the bytes, `<dataDir>/ota-url.key` the URL key. */
  readonly dataDir: string;
  readonly broker: Pick<Broker, 'registerService' | 'deliverTo'>;
  /** Access keys for the presigned upload (the credential store's lookup). */
  readonly credentials: {
    lookup(
      id: string,
    ):
      | { secretAccessKey: string; role: 'admin' | 'read-only' }
      | undefined
      | Promise<{ secretAccessKey: string; role: 'admin' | 'read-only' } | undefined>;
  };
  readonly logger: Logger;
  readonly region: string;
  readonly accountId: string;
  readonly config: Config['ota'];
  /** limits.maxPayloadBytes: the size bound of a stream data message. */
  readonly maxPayloadBytes: number;
  /** Base URL of signed download URLs, read per URL (the platform knows its ports only once listening). */
  readonly downloadBase: () => string;
  readonly now?: () => number;
}

/** The OTA context as other code sees it. */
export interface Ota {
  readonly service: OtaService;
  readonly signer: UrlSigner;
  /** The job-document hook: resolves `${aws:iot:s3-presigned-url:...}` for a delivery (see presign.ts). */
  resolveDocument(document: string, expiresInSec?: number): string;
  /** The device HTTPS route serving signed downloads (mutual TLS port); false for other paths. */
  deviceRoute(req: IncomingMessage, res: ServerResponse, ctx: { readonly url: URL }): Promise<boolean>;
}

/**
 * Start the OTA context: its store (migrated), the file folder, the URL key, the streams MQTT service
 * (`$aws/things/+/streams/+/{describe,get}/+`), the stream and file operations and the upload/download
 * routes. Starts after the broker; closing drains the MQTT queue.
 * @example const ota = await startOta({ db, dataDir, broker, credentials, logger, region, accountId, config: config.ota, maxPayloadBytes, downloadBase: () => base });
 */
export async function startOta(options: OtaOptions): Promise<StartedContext<Ota>> {
  const store = await createOtaStore(options.db);
  const blobs = createBlobStore({ dataDir: options.dataDir, maxBytes: options.config.maxFileBytes });
  const signer = createUrlSigner(loadUrlKey(options.dataDir), options.now);
  const service = createOtaService({
    store,
    blobs,
    signer,
    downloadBase: () => options.config.publicUrl?.replace(/\/+$/, '') ?? options.downloadBase(),
    defaultExpirySeconds: options.config.urlExpirySeconds,
    arnPrefix: `arn:aws:iot:${options.region}:${options.accountId}`,
    now: options.now,
  });
  const registration = options.broker.registerService(
    streamsMqttService({
      service,
      broker: options.broker,
      logger: options.logger,
      maxPayloadBytes: options.maxPayloadBytes,
    }),
  );
  return {
    name: 'ota',
    service: {
      service,
      signer,
      resolveDocument: (document, expiresInSec) => service.resolveDocument(document, expiresInSec),
      deviceRoute: (req, res, ctx) => serveDownload(service, signer, req, res, ctx.url),
    },
    operations: otaOperations(service),
    routes: otaHttpRoutes({
      service,
      signer,
      credentials: options.credentials,
      region: options.region,
      logger: options.logger,
      now: options.now,
    }),
    async close() {
      await registration.unregister();
    },
  };
}
