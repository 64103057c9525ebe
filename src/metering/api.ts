/**
 * The usage and quota API (a Thingstead extension served by the AWS dispatcher, SigV4-signed like the
 * control plane; read-only keys may read):
 * - GET  /usage?from=&to=[&thing=a,b][&billingGroup=][&unit=u1,u2][&groupBy=hour,thing,...][&format=csv]
 * - POST /usage/flush                      write the in-memory ledger now (admin)
 * - GET  /quotas[?thingName=|billingGroupName=]   explicit limits, thing defaults
 * - PUT  /quotas {"thingName"|"billingGroupName", "limits": {"publishRate": 10, "apiRate": null}}
 *
 * And `meterOperations`, which wraps the registry and shadow operations of the AWS API so each call naming a
 * thing is metered (1 KB units) and held to the thing's apiRate / shadowRate, and the data plane's Publish
 * so each publish is metered as the MQTT message it becomes.
 */
import type { AwsOperation, AwsRequest, RawResponse } from '../api/index.js';
import { E } from '../errors/index.js';
import { parseHttpPublish } from '../mqtt/index.js';
import { parseInstant } from '../timeseries/index.js';
import type { Meter, UsageRow } from './meter.js';
import type { Metering } from './module.js';
import { LIMITS, checkLimitValue, isLimitName, throttleReason, type Limits } from './quotas.js';
import { UNITS, isUnit, units1k, type Unit } from './units.js';

/**
 * AWS's list of metered registry operations (AWS IoT Core pricing, additional metering details), plus
 * the deletes and detaches of the same resources [U: the published list is longer than what we could read].
 */
export const REGISTRY_OPERATIONS: ReadonlySet<string> = new Set([
  'AddThingToThingGroup',
  'AttachThingPrincipal',
  'CreateThing',
  'CreateThingGroup',
  'CreateThingType',
  'DescribeThing',
  'DescribeThingGroup',
  'DescribeThingType',
  'ListPrincipalThings',
  'ListThingGroups',
  'ListThingGroupsForThing',
  'ListThingPrincipals',
  'ListThings',
  'ListThingsInThingGroup',
  'ListThingTypes',
  'UpdateThing',
  'UpdateThingGroup',
  'UpdateThingGroupsForThing',
  'DeleteThing',
  'DeleteThingGroup',
  'DeleteThingType',
  'DetachThingPrincipal',
  'RemoveThingFromThingGroup',
]);

/** The shadow operations of the HTTP data plane (metered as shadow operations in 1 KB units). */
export const SHADOW_OPERATIONS: ReadonlySet<string> = new Set([
  'GetThingShadow',
  'UpdateThingShadow',
  'DeleteThingShadow',
  'ListNamedShadowsForThing',
]);

/** Wrap the metered operations (others pass through unchanged). */
export function meterOperations(operations: readonly AwsOperation[], meter: Meter): AwsOperation[] {
  return operations.map((op) => {
    if (op.service === 'iotdata' && op.name === 'Publish') return meterPublish(op, meter);
    const shadow = SHADOW_OPERATIONS.has(op.name);
    if (!shadow && !REGISTRY_OPERATIONS.has(op.name)) return op;
    const unit: Unit = shadow ? 'shadow_ops' : 'registry_ops';
    return {
      ...op,
      async handler(req: AwsRequest) {
        const thing = thingNamed(req);
        const refused = meter.admitApi(thing, shadow ? 'shadowRate' : 'apiRate');
        if (refused !== null) {
          const reason = throttleReason(refused);
          throw shadow
            ? E.QuotaThrottledDataPlane({ thingName: thing, reason })
            : E.QuotaThrottled({ reason });
        }
        const result = await op.handler(req);
        meter.add(thing, unit, units1k(Math.max(req.rawBody.length, responseBytes(result))));
        return result;
      },
    };
  });
}

/** Limits that never refuse: the re-read of a Publish the handler already checked against the real ones. */
const CHECKED = { maxPayloadBytes: Infinity, maxTopicBytes: Infinity, maxTopicLevels: Infinity };

/**
 * The data plane's Publish (reference §4, SigV4), metered as one MQTT message in 5 KB blocks (AWS IoT Core
 * pricing: an HTTP publish is metered as a message) once the handler has validated and published it: a
 * refused or invalid request is not a message, as on MQTT. The caller is an access key, metered as
 * thing '' (meter.httpPublish: no thing, no client id), which no quota applies to, so there is nothing to
 * admit before the handler runs. The request is read again with the same parser for its metered size.
 */
function meterPublish(op: AwsOperation, meter: Meter): AwsOperation {
  return {
    ...op,
    async handler(req: AwsRequest) {
      const result = await op.handler(req);
      const { message, bytes } = parseHttpPublish(
        { topic: req.params.topic!, query: req.query, headers: req.headers, payload: req.rawBody },
        CHECKED,
      );
      meter.httpPublish(
        { clientId: '', principal: { kind: 'accessKey', id: req.caller.accessKeyId } },
        { bytes, bodyBytes: req.rawBody.length, retain: message.retain, topic: message.topic },
      );
      return result;
    },
  };
}

function thingNamed(req: AwsRequest): string {
  const name = req.params.thingName ?? req.input?.thingName;
  return typeof name === 'string' ? name : '';
}

function responseBytes(result: Record<string, unknown> | RawResponse | void): number {
  if (!result) return 0;
  if ('raw' in result && Buffer.isBuffer(result.raw)) return result.raw.length;
  return Buffer.byteLength(JSON.stringify(result));
}

const DIMENSIONS = ['hour', 'day', 'thing', 'billingGroup', 'unit'] as const;
type Dimension = (typeof DIMENSIONS)[number];
const DEFAULT_GROUP_BY: readonly Dimension[] = ['hour', 'thing', 'billingGroup', 'unit'];
/** Rows one answer may carry. */
export const MAX_USAGE_ROWS = 100_000;

/** One row of a usage answer: the grouped dimensions and the amount. */
export type UsageAnswerRow = Partial<Record<Dimension, string>> & { amount: number };

export interface UsageRequest {
  readonly from: number;
  readonly to: number;
  readonly things?: readonly string[] | undefined;
  readonly billingGroup?: string | undefined;
  readonly units?: readonly Unit[] | undefined;
  readonly groupBy?: readonly Dimension[] | undefined;
}

/** Sum ledger rows over the dimensions not grouped by (hours become UTC days with `day`). */
export function groupUsage(rows: readonly UsageRow[], groupBy: readonly Dimension[]): UsageAnswerRow[] {
  const out = new Map<string, UsageAnswerRow>();
  for (const r of rows) {
    // Dimensions first, amount last (the CLI's table takes its columns from the first row).
    const row: Partial<Record<Dimension, string>> = {};
    if (groupBy.includes('hour')) row.hour = new Date(r.hour).toISOString();
    if (groupBy.includes('day')) row.day = new Date(r.hour).toISOString().slice(0, 10);
    if (groupBy.includes('thing')) row.thing = r.thing;
    if (groupBy.includes('billingGroup')) row.billingGroup = r.billingGroup;
    if (groupBy.includes('unit')) row.unit = r.unit;
    const key = JSON.stringify(row);
    const existing = out.get(key);
    if (existing) existing.amount += r.amount;
    else out.set(key, { ...row, amount: r.amount });
  }
  return [...out.values()];
}

/** Parse the query of GET /usage (also used by the CLI's tests): every problem names the parameter. */
export function parseUsageQuery(q: Readonly<Record<string, string>>, now: number): Required<UsageRequest> {
  const to = parseInstant(q.to, now + 1, now, 'to');
  const from = parseInstant(q.from, to - 24 * 3_600_000, now, 'from');
  if (from >= to) throw E.UsageRange();
  const units = q.unit ? q.unit.split(',').filter(Boolean) : [];
  for (const u of units) if (!isUnit(u)) throw E.UsageUnit({ unit: u, units: UNITS });
  const groupBy = q.groupBy ? q.groupBy.split(',').filter(Boolean) : [...DEFAULT_GROUP_BY];
  for (const d of groupBy)
    if (!(DIMENSIONS as readonly string[]).includes(d)) throw E.UsageGroupBy({ choices: DIMENSIONS });
  return {
    // The ledger is hourly: a range covers every hour it touches.
    from: Math.floor(from / 3_600_000) * 3_600_000,
    to,
    things: q.thing ? q.thing.split(',').filter(Boolean) : [],
    billingGroup: q.billingGroup ?? '',
    units: units as Unit[],
    groupBy: groupBy as Dimension[],
  };
}

const csvField = (v: string | number | undefined) => {
  const s = v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** A usage answer as CSV: the grouped dimensions, then amount. */
export function usageCsv(rows: readonly UsageAnswerRow[], groupBy: readonly Dimension[]): string {
  const cols = [...DIMENSIONS.filter((d) => groupBy.includes(d)), 'amount'] as const;
  const lines = [cols.join(',')];
  for (const r of rows) lines.push(cols.map((c) => csvField(r[c])).join(','));
  return lines.join('\n') + '\n';
}

export function meteringOperations(metering: Metering): AwsOperation[] {
  return [
    {
      name: 'GetUsage',
      service: 'iot',
      method: 'GET',
      path: '/usage',
      readOnly: true,
      async handler(req) {
        const q = parseUsageQuery(req.query, Date.now());
        const rows = await metering.query({
          from: q.from,
          to: q.to,
          things: q.things,
          ...(q.billingGroup ? { billingGroup: q.billingGroup } : {}),
          units: q.units,
        });
        const grouped = groupUsage(rows, q.groupBy);
        if (grouped.length > MAX_USAGE_ROWS) throw E.UsageTooManyRows({ limit: MAX_USAGE_ROWS });
        if (req.query.format === 'csv')
          return { raw: Buffer.from(usageCsv(grouped, q.groupBy)), contentType: 'text/csv; charset=utf-8' };
        return {
          from: new Date(q.from).toISOString(),
          to: new Date(q.to).toISOString(),
          groupBy: q.groupBy,
          rows: grouped,
        };
      },
    },
    {
      name: 'FlushUsage',
      service: 'iot',
      method: 'POST',
      path: '/usage/flush',
      async handler() {
        if (!metering.meter) throw E.MeteringOff();
        return { rowsWritten: await metering.flush() };
      },
    },
    {
      name: 'GetQuotas',
      service: 'iot',
      method: 'GET',
      path: '/quotas',
      readOnly: true,
      async handler(req) {
        const all = metering.quotas();
        const thing = req.query.thingName;
        const group = req.query.billingGroupName;
        if (thing) return { thingName: thing, limits: all.things[thing] ?? {}, defaults: all.defaults };
        if (group) return { billingGroupName: group, limits: all.groups[group] ?? {} };
        return { things: all.things, billingGroups: all.groups, defaults: all.defaults, limits: LIMITS };
      },
    },
    {
      name: 'SetQuotas',
      service: 'iot',
      method: 'PUT',
      path: '/quotas',
      async handler(req) {
        const b = req.body as { thingName?: unknown; billingGroupName?: unknown; limits?: unknown };
        const thing = typeof b.thingName === 'string' && b.thingName ? b.thingName : null;
        const group =
          typeof b.billingGroupName === 'string' && b.billingGroupName ? b.billingGroupName : null;
        if ((thing === null) === (group === null)) throw E.QuotaScope();
        if (typeof b.limits !== 'object' || b.limits === null || Array.isArray(b.limits))
          throw E.MissingParameter({ name: 'limits' });
        const limits: Partial<Record<keyof Limits, number | null>> = {};
        for (const [name, value] of Object.entries(b.limits)) {
          if (!isLimitName(name)) throw E.QuotaLimit({ limit: name, limits: LIMITS });
          if (!checkLimitValue(value)) throw E.QuotaValue({ limit: name });
          limits[name] = value;
        }
        await metering.setQuotas(thing ? 'thing' : 'billingGroup', (thing ?? group)!, limits);
        const all = metering.quotas();
        return thing
          ? { thingName: thing, limits: all.things[thing] ?? {} }
          : { billingGroupName: group, limits: all.groups[group!] ?? {} };
      },
    },
  ];
}
