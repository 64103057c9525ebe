import { createAwsApi, type AwsApiOptions } from './aws.js';
import type { AwsOperation } from './operations.js';
import { createHttpServer, type HttpHandler, type HttpServer } from './server.js';

/** An MQTT topic filter a context serves inside the broker (e.g. the registry's lifecycle events). */
export interface ReservedTopic {
  readonly filter: string;
  handler(message: { readonly topic: string; readonly payload: Buffer }): void;
}

/**
 * What a started context hands the composition root (src/platform): its AWS-compatible operations (one
 * dispatcher serves them all), HTTP routes, the MQTT topics it serves, and how to stop it. The platform
 * starts contexts in dependency order and closes them in the reverse order.
 */
export interface ContextModule {
  readonly name: string;
  readonly operations?: readonly AwsOperation[];
  readonly routes?: readonly HttpHandler[];
  readonly reservedTopics?: readonly ReservedTopic[];
  close(): Promise<void> | void;
}

/** A started context plus the service other contexts are given (through src/platform's adapters). */
export type StartedContext<S> = ContextModule & { readonly service: S };

/**
 * The HTTP API as a context module: the server, the AWS dispatcher over every context's operations, then
 * the contexts' own routes; listening on `host:port` when it returns.
 */
export async function startHttpApi(options: {
  readonly host: string;
  readonly port: number;
  readonly health: () => string[];
  readonly aws: AwsApiOptions;
  readonly routes?: readonly HttpHandler[];
}): Promise<StartedContext<{ readonly http: HttpServer; readonly port: number }>> {
  const http = createHttpServer({
    logger: options.aws.logger,
    metrics: options.aws.metrics,
    health: options.health,
  });
  http.use(createAwsApi(options.aws));
  for (const route of options.routes ?? []) http.use(route);
  const address = await http.listen(options.host, options.port);
  return { name: 'api', service: { http, port: address.port }, close: () => http.close() };
}
