/**
 * Reserved-topic services: the broker's table of who serves which `$aws/...` topics.
 *
 * Two kinds of entry, found by one trie lookup (never a `startsWith` chain):
 * - broker-owned namespaces (`$aws/events/#`): only the broker publishes there; a client PUBLISH, will or
 *   device HTTPS publish is refused (authorizeClientPublish asks `isBrokerOwned`). Fixed, AWS's contract.
 * - services registered by a context (shadow, jobs, certificates, provisioning templates, streams):
 *   `{ name, filters, handle }`. A request is a message published by a client (it has a publisher) whose
 *   topic matches a service filter. It was authorized like any publish (iot:Publish, iot:RetainPublish) before
 *   routing, it is routed to subscribers as usual (AWS: request topics such as `$aws/things/x/shadow/update`
 *   can be subscribed to), and it is also handed to the service's bounded work queue, off the routing path.
 *
 * Contract for a service:
 * - `handle(request)` runs on a later turn, never on the routing path; it may be async. With the default
 *   concurrency (1) requests are handled one at a time in arrival order (ordering matters: shadow versions).
 * - It answers as the platform: `broker.publish(message)` without a publisher. The platform's own publishes
 *   are never requests, so a reply on a topic the service's filters match does not come back to it.
 * - A throw or rejection is counted (errors) and logged, never fatal. When the queue is full the request is
 *   dropped and counted (dropped{reason="queue_full"}); the message was still routed to subscribers.
 * - Counted per service: thingstead_mqtt_service_{requests,handled,errors,dropped}_total{service}; the queue
 *   itself: thingstead_work_*{queue="mqtt.service.<name>"}.
 *
 * Hot path: `match` and `dispatch` are synchronous and allocation-light; a topic that does not start with
 * `$` is answered at once (every entry lives in a `$` namespace: `register` refuses anything else).
 */
import { E } from '../errors/index.js';
import { Counter, type Logger, type Registry } from '../observability/index.js';
import { WorkQueue, type WorkDropReason } from '../work/index.js';
import { checkTopicFilter } from './topics.js';
import type { Message, PublishProperties, Publisher } from './types.js';

/** One request: a client's PUBLISH (or will, or device HTTPS publish) on a topic the service serves. */
export interface ServiceRequest {
  readonly topic: string;
  /** Owned by the broker (shared with subscribers' deliveries): read it, never mutate it. */
  readonly payload: Buffer;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  /** MQTT 5 properties as published (response topic, correlation data, user properties). */
  readonly properties: PublishProperties | undefined;
  /** Who published it (authorized for iot:Publish on `topic` before it got here). */
  readonly publisher: Publisher;
  /** Epoch ms the broker routed it. */
  readonly receivedAt: number;
}

/**
 * A context's service on reserved topics.
 * @example broker.registerService({ name: 'shadow', filters: ['$aws/things/+/shadow/update'], handle: (r) => shadows.update(r) })
 */
export interface ReservedTopicService {
  /** Metrics label and log field; one registration per name. */
  readonly name: string;
  /** MQTT filters (wildcards allowed) inside a `$` namespace and outside broker-owned ones. */
  readonly filters: readonly string[];
  /** Off the routing path, on the service's bounded queue. May be async; a failure is counted and logged. */
  handle(request: ServiceRequest): void | Promise<void>;
  /** Queue bounds (defaults: 10 000 requests, 16 MiB of payload, concurrency 1). */
  readonly queue?: { readonly maxItems?: number; readonly maxBytes?: number; readonly concurrency?: number };
  /**
   * Called for a request the queue refused (full, or shutting down), after it was counted: the service may
   * answer it (the shadow service publishes 429 on `/rejected`). Synchronous, on the routing path: it must be
   * cheap and must not throw.
   */
  onDrop?(request: ServiceRequest, reason: WorkDropReason): void;
}

export interface ServiceStats {
  /** Requests matched to the service (handled + errors + dropped + waiting + in flight). */
  readonly requests: number;
  readonly handled: number;
  readonly errors: number;
  readonly dropped: Readonly<Record<WorkDropReason, number>>;
  readonly depth: number;
  readonly inFlight: number;
}

export interface ServiceRegistration {
  stats(): ServiceStats;
  /** Take the service out of the table, then drain its queue (what was accepted is still handled). */
  unregister(): Promise<void>;
}

/** What `dispatch` takes of a routed message. */
type Routable = Pick<Message, 'topic' | 'payload' | 'qos' | 'retain' | 'properties'> & {
  readonly publisher: Publisher | null;
};

// ---- the filter trie ---------------------------------------------------------------------------------

class Node<V> {
  children: Map<string, Node<V>> | null = null;
  /** Values whose filter ends here. */
  values: V[] | null = null;
  /** Values whose filter ends with `#` below this node (match this level and everything under it). */
  rest: V[] | null = null;
}

/**
 * MQTT filters to values, matched against topic names by walking the topic once. Small and rarely changed
 * (a handful of services), so there is no match cache; a lookup allocates only the level strings.
 */
class FilterTrie<V> {
  private readonly root = new Node<V>();

  add(filter: string, value: V): void {
    let node = this.root;
    for (const level of filter.split('/')) {
      if (level === '#') {
        (node.rest ??= []).push(value);
        return;
      }
      node.children ??= new Map();
      let child = node.children.get(level);
      if (!child) node.children.set(level, (child = new Node()));
      node = child;
    }
    (node.values ??= []).push(value);
  }

  remove(filter: string, value: V): void {
    const path: Array<[Node<V>, string]> = [];
    let node: Node<V> | undefined = this.root;
    const levels = filter.split('/');
    for (const level of levels) {
      if (level === '#') break;
      const next: Node<V> | undefined = node.children?.get(level);
      if (!next) return;
      path.push([node, level]);
      node = next;
    }
    const list = levels[levels.length - 1] === '#' ? node.rest : node.values;
    const i = list?.indexOf(value) ?? -1;
    if (i >= 0) list!.splice(i, 1);
    // Prune empty nodes bottom-up.
    for (let k = path.length - 1; k >= 0; k--) {
      const [parent, level] = path[k]!;
      const child = parent.children!.get(level)!;
      if (child.values?.length || child.rest?.length || child.children?.size) break;
      parent.children!.delete(level);
    }
  }

  /** Every value whose filter matches `topic`, each once, into `out`. */
  match(topic: string, out: V[]): void {
    this.walk(this.root, topic, 0, out);
  }

  private walk(node: Node<V>, topic: string, start: number, out: V[]): void {
    // [MQTT-4.7.1-2] `a/#` matches `a` and everything below it.
    if (node.rest) addAll(out, node.rest);
    if (start > topic.length) {
      if (node.values) addAll(out, node.values);
      return;
    }
    const children = node.children;
    if (children === null) return;
    const end = topic.indexOf('/', start);
    const level = end === -1 ? topic.slice(start) : topic.slice(start, end);
    const next = end === -1 ? topic.length + 1 : end + 1;
    const exact = children.get(level);
    if (exact) this.walk(exact, topic, next, out);
    // [MQTT-4.7.2-1] wildcards at the first level do not match `$` topics: every first level here is literal.
    const plus = start === 0 ? undefined : children.get('+');
    if (plus) this.walk(plus, topic, next, out);
  }
}

function addAll<V>(out: V[], values: readonly V[]): void {
  for (const v of values) if (!out.includes(v)) out.push(v);
}

// ---- broker-owned namespaces ----------------------------------------------------------------------------

/**
 * Topics only the broker publishes to: `$aws/events/...`, and the answers of the reserved-topic services
 * (AWS's reserved-topic table allows clients only Subscribe/Receive on these). A client that could publish
 * `$aws/things/t1/shadow/update/accepted` or `.../jobs/notify-next` could feed its own or, with a broad
 * policy, another thing's SDK a forged answer; so they are refused like `$aws/events`, whatever the policy.
 */
const answers = (base: string, ops: readonly string[], suffixes: readonly string[]) =>
  ops.flatMap((op) => suffixes.map((s) => `${base}${op}${s}`));
const ACCEPTED_REJECTED = ['/accepted', '/rejected'] as const;
export const BROKER_OWNED_NAMESPACES: readonly { readonly name: string; readonly filter: string }[] = [
  { name: 'events', filter: '$aws/events/#' },
  ...[
    ...answers('$aws/things/+/shadow/', ['get', 'update', 'delete'], ACCEPTED_REJECTED),
    '$aws/things/+/shadow/update/delta',
    '$aws/things/+/shadow/update/documents',
    ...answers('$aws/things/+/shadow/name/+/', ['get', 'update', 'delete'], ACCEPTED_REJECTED),
    '$aws/things/+/shadow/name/+/update/delta',
    '$aws/things/+/shadow/name/+/update/documents',
  ].map((filter) => ({ name: 'shadow', filter })),
  ...[
    '$aws/things/+/jobs/notify',
    '$aws/things/+/jobs/notify-next',
    ...answers('$aws/things/+/jobs/', ['get', 'start-next'], ACCEPTED_REJECTED),
    ...answers('$aws/things/+/jobs/+/', ['get', 'update'], ACCEPTED_REJECTED),
  ].map((filter) => ({ name: 'jobs', filter })),
  ...answers('$aws/things/+/streams/+/', ['data', 'description', 'rejected'], ['/json', '/cbor']).map(
    (filter) => ({ name: 'streams', filter }),
  ),
  ...[
    ...answers('$aws/certificates/', ['create/+', 'create-from-csr/+'], ACCEPTED_REJECTED),
    ...answers('$aws/provisioning-templates/+/', ['provision/+'], ACCEPTED_REJECTED),
  ].map((filter) => ({ name: 'provisioning', filter })),
];

const brokerOwned = new FilterTrie<string>();
for (const ns of BROKER_OWNED_NAMESPACES) brokerOwned.add(ns.filter, ns.name);

/** Is `topic` in a broker-owned namespace (clients refused)? Hot path: one trie lookup for `$` topics. */
export function isBrokerOwned(topic: string): boolean {
  if (topic.charCodeAt(0) !== 36 /* $ */) return false;
  const out: string[] = [];
  brokerOwned.match(topic, out);
  return out.length > 0;
}

// ---- the service table ----------------------------------------------------------------------------------

const DEFAULT_QUEUE = { maxItems: 10_000, maxBytes: 16 * 1024 * 1024, concurrency: 1 };

class Registered {
  requests = 0;
  constructor(
    readonly service: ReservedTopicService,
    readonly queue: WorkQueue<ServiceRequest>,
  ) {}

  stats(): ServiceStats {
    const c = this.queue.counts;
    return {
      requests: this.requests,
      handled: c.processed,
      errors: c.failed,
      dropped: { ...c.dropped },
      depth: this.queue.depth,
      inFlight: this.queue.inFlight,
    };
  }
}

/** The broker's table of reserved-topic services (one per broker). See the contract at the top. */
export class ServiceTable {
  private readonly trie = new FilterTrie<Registered>();
  private readonly byName = new Map<string, Registered>();
  /** Scratch array for `match` (hot path: no allocation when nothing matches). */
  private readonly found: Registered[] = [];

  constructor(private readonly options: { logger: Logger; metrics?: Registry | undefined }) {
    if (options.metrics) this.instrument(options.metrics);
  }

  /** Registered services. */
  get size(): number {
    return this.byName.size;
  }

  /**
   * Add a service. Throws ThingsteadError('InvalidRequest') for a duplicate name or a filter that is
   * invalid, outside a `$` namespace, or inside a broker-owned one.
   */
  register(service: ReservedTopicService): ServiceRegistration {
    if (this.byName.has(service.name)) throw E.ServiceDuplicate({ service: service.name });
    if (service.filters.length === 0) throw E.ServiceNoFilters({ service: service.name });
    for (const filter of service.filters) this.checkFilter(service.name, filter);
    const q = { ...DEFAULT_QUEUE, ...service.queue };
    const queue = new WorkQueue<ServiceRequest>({
      name: `mqtt.service.${service.name}`,
      maxItems: q.maxItems,
      maxBytes: q.maxBytes,
      concurrency: q.concurrency,
      sizeOf: (r) => r.payload.length + r.topic.length + 128,
      logger: this.options.logger.child({ service: service.name }),
      metrics: this.options.metrics,
      handle: (r) => service.handle(r),
      ...(service.onDrop
        ? { onDrop: (r: ServiceRequest, reason: WorkDropReason) => service.onDrop!(r, reason) }
        : {}),
    });
    const entry = new Registered(service, queue);
    this.byName.set(service.name, entry);
    for (const filter of new Set(service.filters)) this.trie.add(filter, entry);
    return {
      stats: () => entry.stats(),
      unregister: async () => {
        if (this.byName.get(service.name) !== entry) return;
        this.byName.delete(service.name);
        for (const filter of new Set(service.filters)) this.trie.remove(filter, entry);
        await queue.close();
      },
    };
  }

  stats(name: string): ServiceStats | undefined {
    return this.byName.get(name)?.stats();
  }

  /**
   * The services a message is a request for: non-empty only when it has a publisher (the platform's own
   * publishes are never requests) and its topic matches a service filter. Hot path. The returned array is
   * reused by the next call: pass it to `dispatch` at once.
   */
  match(msg: Routable): readonly Registered[] | null {
    if (msg.publisher === null || this.byName.size === 0 || msg.topic.charCodeAt(0) !== 36) return null;
    const found = this.found;
    found.length = 0;
    this.trie.match(msg.topic, found);
    return found.length ? found : null;
  }

  /** Hand a request to each matched service's queue. Hot path: enqueue only, never run a handler here. */
  dispatch(services: readonly Registered[], msg: Routable): void {
    const request: ServiceRequest = {
      topic: msg.topic,
      payload: msg.payload,
      qos: msg.qos,
      retain: msg.retain,
      properties: msg.properties,
      publisher: msg.publisher!,
      receivedAt: Date.now(),
    };
    for (const s of services) {
      s.requests++;
      s.queue.push(request);
    }
  }

  /** Stop taking requests and drain every service's queue (at most `timeoutMs` each, default 5 s). */
  async close(timeoutMs = 5000): Promise<void> {
    const entries = [...this.byName.values()];
    this.byName.clear();
    await Promise.all(entries.map((e) => e.queue.close({ timeoutMs })));
  }

  private checkFilter(name: string, filter: string): void {
    const problem = checkTopicFilter(filter, { maxTopicBytes: 65535, maxTopicLevels: 1 << 30 });
    const first = filter.split('/', 1)[0]!;
    const why =
      problem !== null
        ? `is not a valid filter (${problem})`
        : first.charCodeAt(0) !== 36 || first.includes('+') || first.includes('#')
          ? 'is not in a reserved ($) namespace'
          : ownedOverlap(filter)
            ? 'is in a broker-owned namespace'
            : null;
    if (why) throw E.ServiceFilter({ service: name, filter, problem: why });
  }

  private instrument(registry: Registry): void {
    const live = () => [...this.byName.values()];
    const counter = (what: string, help: string, read: (s: ServiceStats) => number) => {
      const reported = new WeakMap<Registered, number>();
      const c: Counter<'service'> = new Counter({
        name: `thingstead_mqtt_service_${what}_total`,
        help,
        labelNames: ['service'],
        registers: [registry],
        collect() {
          for (const e of live()) {
            const n = read(e.stats());
            const delta = n - (reported.get(e) ?? 0);
            if (delta > 0) c.inc({ service: e.service.name }, delta);
            reported.set(e, n);
          }
        },
      });
    };
    counter('requests', 'Requests (client publishes) matched to a reserved-topic service', (s) => s.requests);
    counter('handled', 'Service requests handled without error', (s) => s.handled);
    counter('errors', 'Service requests whose handler threw or rejected', (s) => s.errors);
    const reported = new WeakMap<Registered, Record<WorkDropReason, number>>();
    const dropped: Counter<'service' | 'reason'> = new Counter({
      name: 'thingstead_mqtt_service_dropped_total',
      help: 'Service requests dropped, by reason (queue_full, shutdown); the message was still routed',
      labelNames: ['service', 'reason'],
      registers: [registry],
      collect() {
        for (const e of live()) {
          const now = e.stats().dropped;
          const before = reported.get(e) ?? { queue_full: 0, shutdown: 0 };
          for (const reason of ['queue_full', 'shutdown'] as const)
            if (now[reason] > before[reason])
              dropped.inc({ service: e.service.name, reason }, now[reason] - before[reason]);
          reported.set(e, now);
        }
      },
    });
  }
}

/**
 * Does `filter` reach into the broker's own event namespace (`$aws/events`)? A service's filter may cover
 * answer topics (a `$aws/things/+/jobs/#` service sees only what clients may publish there: requests).
 */
function ownedOverlap(filter: string): boolean {
  const levels = filter.split('/');
  return BROKER_OWNED_NAMESPACES.some((ns) => {
    if (ns.name !== 'events') return false;
    const owned = ns.filter.split('/');
    for (let i = 0; i < owned.length; i++) {
      const o = owned[i]!;
      const f = levels[i];
      if (o === '#' || f === '#') return true;
      if (f === undefined) return false;
      if (o !== f && o !== '+' && f !== '+') return false;
    }
    return levels.length === owned.length;
  });
}
