/**
 * The HTTP API: control plane, data plane, jobs data plane (AWS restJson1 + SigV4), the console's
 * endpoints, /metrics and /healthz.
 */
export { createHttpServer, type HttpHandler, type HttpServer } from './server.js';
export type { AwsOperation, AwsRequest, AwsService, ApiCaller, RawResponse } from './operations.js';
