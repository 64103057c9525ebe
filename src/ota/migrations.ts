import type { Migration } from '../store/index.js';

/**
 * Firmware files (metadata; the bytes live under `<dataDir>/files/<sha256>`) and MQTT file-delivery streams
 * (CreateStream's files, description and version). Times are epoch ms.
 */
const tables = (big: string) => `
  CREATE TABLE ota_files (
    sha256 TEXT PRIMARY KEY, size ${big} NOT NULL, name TEXT, version TEXT, created_at ${big} NOT NULL);
  CREATE INDEX ota_files_name ON ota_files (name, created_at);
  CREATE TABLE ota_streams (
    stream_id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL,
    created_at ${big} NOT NULL, updated_at ${big} NOT NULL);
`;

export const OTA_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'firmware files and MQTT file-delivery streams',
    sqlite: tables('INTEGER'),
    postgres: tables('BIGINT'),
  },
];
