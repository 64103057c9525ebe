import type { IncomingHttpHeaders } from 'node:http';
import type { z } from 'zod';

/** The SigV4 signing name in the credential scope, which selects the API family (reference §1). */
export type AwsService = 'iot' | 'iotdata' | 'iot-jobs-data';

/** The caller, as authenticated by SigV4 (an access key) for control-plane requests. */
export interface ApiCaller {
  readonly accessKeyId: string;
  readonly role: 'admin' | 'read-only';
}

/** A decoded request handed to an operation handler. */
export interface AwsRequest {
  /** Path labels, percent-decoded per segment (reference §2). */
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters, decoded; repeated names keep the last value. */
  readonly query: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON body ({} when absent) for JSON operations. */
  readonly body: Record<string, any>;
  /** Raw body bytes (httpPayload operations: Publish, UpdateThingShadow). */
  readonly rawBody: Buffer;
  readonly caller: ApiCaller;
  /**
   * The operation's input members merged from path labels, bound query parameters, bound headers and the
   * JSON body, coerced to their declared types and validated by the operation's `input` schema.
   */
  readonly input: Record<string, any>;
}

/** Wire type of a query-bound member (restJson1: booleans `true`/`false`, integers in decimal). */
export type QueryMemberType = 'string' | 'integer' | 'boolean';

/** A non-JSON response (httpPayload outputs such as shadow documents). */
export interface RawResponse {
  readonly raw: Buffer;
  readonly contentType?: string;
  readonly status?: number;
}

/**
 * One AWS-compatible HTTP operation. Contexts declare their operations in their own `api.ts` and the API
 * context serves them: routing by (service, method, path template), SigV4, errors in AWS's shape (§6).
 * Handlers throw ThingsteadError for failures; they return the response JSON object (or RawResponse).
 * @example { name: 'DescribeThing', service: 'iot', method: 'GET', path: '/things/{thingName}', handler: ... }
 */
export interface AwsOperation {
  readonly name: string;
  readonly service: AwsService;
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /**
   * Path template with `{label}` segments, e.g. `/things/{thingName}/principals`; a last `{label+}` is greedy
   * (restJson1: it takes the rest of the path, `/` included, e.g. `/destinations/{arn+}`).
   */
  readonly path: string;
  /**
   * True for operations that change nothing (Describe, List, Get, Search): read-only callers may call only
   * these; every other operation is refused for them with AccessDeniedException.
   */
  readonly readOnly?: boolean;
  /** Query-bound members: member name -> wire name (default: the member name) and type. */
  readonly query?: Readonly<Record<string, { readonly name?: string; readonly type: QueryMemberType }>>;
  /** Header-bound members: member name -> header name, e.g. `{ principal: 'x-amzn-principal' }`. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Schema of the merged input (labels + query + headers + body). Violations are answered with
   * InvalidRequestException and AWS's "1 validation error detected: Value ... at ..." message.
   */
  readonly input?: z.ZodType;
  /** Raw-body operations (Publish, UpdateThingShadow): the body is not parsed as JSON. */
  readonly rawBody?: boolean;
  /**
   * Also answered without a signature (the path carries the secret: ConfirmTopicRuleDestination's enableUrl).
   * A signed request to it is verified as usual.
   */
  readonly unsigned?: boolean;
  handler(request: AwsRequest): Promise<Record<string, unknown> | RawResponse | void>;
}

/** Extra route details of a control-plane operation built with `iotOperation`. */
export type IotOperationOptions = Pick<AwsOperation, 'query' | 'headers' | 'readOnly' | 'input'>;

/**
 * A control-plane (`iot` signing name) operation whose handler receives the validated input members.
 * GET operations are read-only (allowed for read-only keys) unless `readOnly` says otherwise.
 * @example iotOperation('DescribeThing', 'GET', '/things/{thingName}', (input) => registry.describeThing(input))
 */
export function iotOperation(
  name: string,
  method: AwsOperation['method'],
  path: string,
  handler: (input: Record<string, any>, request: AwsRequest) => unknown,
  options: IotOperationOptions = {},
): AwsOperation {
  return {
    name,
    service: 'iot',
    method,
    path,
    ...options,
    readOnly: options.readOnly ?? method === 'GET',
    handler: async (request) => ((await handler(request.input, request)) ?? {}) as Record<string, unknown>,
  };
}
