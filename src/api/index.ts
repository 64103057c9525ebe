/**
 * The HTTP API: control plane, data plane, jobs data plane (AWS restJson1 + SigV4), the console's
 * endpoints, /metrics and /healthz.
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
export { createAwsApi, toAwsJson, type AwsApiOptions, type AwsApiKey } from './aws.js';
export { awsString, awsInt, awsBool, maxResults, validateInput } from './validation.js';
export { signedFetch, encodePath, AwsApiError, type SignedFetchOptions } from './client.js';
