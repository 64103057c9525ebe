/**
 * Metering: the usage ledger (counted on the broker's hot path, exact, hourly per thing and billing
 * group, in SQLite or PostgreSQL), quotas that explain themselves (per thing and billing group, changed
 * at run time), the cost report (price tables in pricing/*.json) and Parquet exports of telemetry and
 * usage. See docs/metering.md.
 *
 * Files by role: units.ts (the units and AWS's counting rules), meter.ts (the broker's UsageMeter and the
 * in-memory ledger), quotas.ts (limits, buckets, reasons), store.ts (ledger and limits in the database),
 * api.ts (usage and quota operations, the metered-operation wrapper), pricing.ts (cost report), export.ts
 * (Parquet), parquet.ts (the Parquet file layout), module.ts (`startMetering`).
 *
 * Imports: api (types), config (types), errors, events (types), mqtt (the UsageMeter contract, types),
 * observability, registry (types), store, timeseries (export source, time parsing).
 */
export { startMetering, type Metering, type MeteringOptions } from './module.js';
export { startExports, type Exports } from './export.js';
export { UNITS, UNIT_HELP, isUnit, units1k, units4k, units5k, type Unit } from './units.js';
export {
  LIMITS,
  LIMIT_HELP,
  AWS_THING_DEFAULTS,
  type LimitName,
  type Limits,
  type Throttle,
} from './quotas.js';
export type { UsageRow } from './meter.js';
export { groupUsage, usageCsv, parseUsageQuery, type UsageAnswerRow } from './api.js';
export { loadPriceTable, priceUsage, type PriceTable, type CostReport } from './pricing.js';
