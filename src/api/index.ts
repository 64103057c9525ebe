/**
 * The HTTP API: control plane, data plane, jobs data plane (AWS restJson1 + SigV4), the console's
 * endpoints, /metrics and /healthz.
 *
 * Owns the HTTP server, AWS-compatible routing, input binding and validation (`awsString`, ...), the AWS
 * error shape and a SigV4-signing client (`signedFetch`). It knows no context's operations: each context
 * declares its own (`iotOperation`) and the platform hands them in. Also the contract every context's
 * `start<Context>` returns (`ContextModule`), and the HTTP API's own (`startHttpApi`).
 * Imports: errors, json, observability, sigv4.
 */
export { createHttpServer, type HttpHandler, type HttpServer } from './server.js';
export type {
  AwsOperation,
  AwsRequest,
  AwsService,
  ApiCaller,
  RawResponse,
  IotOperationOptions,
} from './operations.js';
export { iotOperation } from './operations.js';
export type { QueryMemberType } from './operations.js';
export { createAwsApi, toAwsJson, type AwsApiOptions, type AwsApiKey, type SessionCaller } from './aws.js';
export { awsString, awsInt, awsBool, maxResults, validateInput } from './validation.js';
export { startHttpApi, type ContextModule, type ReservedTopic, type StartedContext } from './module.js';
export { signedFetch, encodePath, AwsApiError, type SignedFetchOptions } from './client.js';
