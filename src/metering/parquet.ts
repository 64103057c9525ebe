/**
 * The Parquet files of the exports (schema documented in docs/metering.md), written with hyparquet-writer
 * (pure JavaScript, MIT): snappy-compressed, dictionary/plain encodings, statistics, INT64 timestamps with the
 * TIMESTAMP logical type (UTC, microseconds: what Spark, DuckDB and pandas/pyarrow read natively).
 *
 * Files are written to a temporary name and renamed into place, so a reader never sees half a file and a
 * re-export of the same window replaces the file whole.
 */
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';

type WriteOptions = Parameters<typeof parquetWriteFile>[0];
type Element = NonNullable<WriteOptions['schema']>[number];

const timestamp = (name: string): Element => ({
  name,
  type: 'INT64',
  repetition_type: 'REQUIRED',
  converted_type: 'TIMESTAMP_MICROS',
  logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
});
const text = (name: string, required = true): Element => ({
  name,
  type: 'BYTE_ARRAY',
  repetition_type: required ? 'REQUIRED' : 'OPTIONAL',
  converted_type: 'UTF8',
  logical_type: { type: 'STRING' },
});
const int64 = (name: string): Element => ({ name, type: 'INT64', repetition_type: 'REQUIRED' });
const double = (name: string): Element => ({ name, type: 'DOUBLE', repetition_type: 'OPTIONAL' });

/** One telemetry point as exported (the partition's date and thing are in the path). */
export interface TelemetryRecord {
  readonly ts: number;
  readonly metric: string;
  readonly value: number | string;
}

/** One usage ledger row as exported (the partition's date and billing group are in the path). */
export interface UsageRecord {
  readonly hour: number;
  readonly thing: string;
  readonly unit: string;
  readonly amount: number;
}

const CREATED_BY = 'thingstead metering export (hyparquet-writer)';

function write(file: string, columns: Array<{ name: string; data: unknown[] }>, schema: Element[]): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${process.pid}.${Date.now()}.tmp`);
  parquetWriteFile({
    filename: tmp,
    columnData: columns,
    schema: [{ name: 'schema', num_children: schema.length }, ...schema],
    codec: 'SNAPPY',
    createdBy: CREATED_BY,
  });
  renameSync(tmp, file);
}

/** Columns: ts TIMESTAMP(UTC, µs), metric STRING, value DOUBLE (null for text), value_text STRING (null for numbers). */
export function writeTelemetryFile(file: string, records: readonly TelemetryRecord[]): void {
  write(
    file,
    [
      { name: 'ts', data: records.map((r) => new Date(r.ts)) },
      { name: 'metric', data: records.map((r) => r.metric) },
      { name: 'value', data: records.map((r) => (typeof r.value === 'number' ? r.value : null)) },
      { name: 'value_text', data: records.map((r) => (typeof r.value === 'string' ? r.value : null)) },
    ],
    [timestamp('ts'), text('metric'), double('value'), text('value_text', false)],
  );
}

/** Columns: hour TIMESTAMP(UTC, µs; start of the hour), thing STRING, unit STRING, amount INT64. */
export function writeUsageFile(file: string, records: readonly UsageRecord[]): void {
  write(
    file,
    [
      { name: 'hour', data: records.map((r) => new Date(r.hour)) },
      { name: 'thing', data: records.map((r) => r.thing) },
      { name: 'unit', data: records.map((r) => r.unit) },
      { name: 'amount', data: records.map((r) => BigInt(Math.round(r.amount))) },
    ],
    [timestamp('hour'), text('thing'), text('unit'), int64('amount')],
  );
}

/**
 * A Hive partition directory value: characters other than letters, digits, `_`, `-` and `.` are
 * percent-encoded as Hive does (Spark decodes them); '' is Hive's null partition.
 */
export function partitionValue(value: string): string {
  if (value === '') return '__HIVE_DEFAULT_PARTITION__';
  return value.replace(/[^A-Za-z0-9_.-]/g, (c) =>
    [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}
