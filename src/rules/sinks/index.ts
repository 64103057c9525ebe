/**
 * Where deliveries go: one file per sink kind (republish, http, kafka, nats, postgres, timeseries).
 * Each throws ActionError with `retryable` set by the failure's nature; connections are shared per
 * destination and opened on first use.
 */
import type { Broker } from '../../mqtt/index.js';
import { ActionError, type ActionRequest } from '../actions.js';
import type { ActionConfig } from '../types.js';
import { httpPost } from './http.js';
import { KafkaSink } from './kafka.js';
import { NatsSink } from './nats.js';
import { PostgresSink } from './postgres.js';
import { republish } from './republish.js';
import { writePoints, type TimeseriesWriter } from './timeseries.js';

export { REPUBLISH_DEPTH } from './republish.js';
export { buildKafkaRecord, kafkaClientConfig } from './kafka.js';

export interface SinkDeps {
  readonly broker: Broker | null;
  readonly timeseries: TimeseriesWriter | null;
  /** Default NATS servers (comma-separated) for nats actions without `servers`. */
  readonly natsServers: string | null;
  /** Default PostgreSQL URL for postgres actions without `connectionString`. */
  readonly postgresUrl: string | null;
  /** Why an http action may not send to a URL (topic rule destinations), or null; sync, from memory. */
  readonly httpRefusal?: (url: string) => string | null;
}

/** Executes prepared action requests. Throws ActionError with `retryable` set by the failure's nature. */
export class Sinks {
  private readonly nats: NatsSink;
  private readonly kafka = new KafkaSink();
  private readonly postgres: PostgresSink;

  constructor(private readonly deps: SinkDeps) {
    this.nats = new NatsSink(deps.natsServers);
    this.postgres = new PostgresSink(deps.postgresUrl);
  }

  /** `depth`: republish hops of the message that triggered this delivery (republish only). */
  async execute(config: ActionConfig, request: ActionRequest, depth = 0): Promise<void> {
    switch (request.kind) {
      case 'republish':
        return republish(this.deps.broker, request, depth);
      case 'http': {
        const refused = this.deps.httpRefusal?.(request.url);
        // A destination that is not ENABLED refuses traffic: final, to the errorAction (not retried).
        if (refused) throw new ActionError(refused, false);
        return httpPost(request);
      }
      case 'nats':
        return this.nats.publish(config, request);
      case 'kafka':
        return this.kafka.send(config, request);
      case 'postgres':
        return this.postgres.insert(config, request);
      case 'timeseries':
        return writePoints(this.deps.timeseries, request);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.nats.close(), ...this.kafka.close(), ...this.postgres.close()]);
  }
}
