/**
 * The OTA operations under signing name `iot`: AWS's stream operations (CreateStream, DescribeStream,
 * UpdateStream, DeleteStream, ListStreams; routes and shapes from the @aws-sdk/client-iot model) and
 * Thingstead's own firmware-file operations (ListOtaFiles, DescribeOtaFile, DeleteOtaFile under /ota/files;
 * the upload is a streaming route in http.ts).
 */
import { z } from 'zod';
import { awsBool, awsInt, awsString, iotOperation, maxResults, type AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import type { OtaService } from './service.js';
import type { FileRecord } from './store.js';

const streamId = awsString({ min: 1, max: 128, pattern: /^[a-zA-Z0-9_-]+$/, patternText: '[a-zA-Z0-9_-]+' });
const sha256 = awsString({ min: 64, max: 64, pattern: /^[0-9a-f]{64}$/, patternText: '[0-9a-f]{64}' });
const description = awsString({ max: 2028 });
const files = z
  .array(
    z
      .object({
        fileId: awsInt(0, 255),
        s3Location: z
          .object({
            bucket: awsString({ min: 1 }),
            key: awsString({ min: 1 }),
            version: awsString().optional(),
          })
          .strict(),
      })
      .strict(),
  )
  .min(1, { error: 'Member must have length greater than or equal to 1' })
  .max(50, { error: 'Member must have length less than or equal to 50' });
const roleArn = awsString({ min: 20, max: 2048 });
const tags = z.array(
  z.object({ Key: awsString({ min: 1, max: 128 }), Value: awsString({ max: 256 }).optional() }).strict(),
);
const listQuery = { maxResults: { type: 'integer' }, nextToken: { type: 'string' } } as const;

const token = {
  encode: (key: string) => Buffer.from(key, 'utf8').toString('base64url'),
  decode: (t: string | undefined) => (t ? Buffer.from(t, 'base64url').toString('utf8') : undefined),
};
const fileShape = (f: FileRecord) => ({
  sha256: f.sha256,
  size: f.size,
  ...(f.name !== null ? { name: f.name } : {}),
  ...(f.version !== null ? { version: f.version } : {}),
  createdAt: f.createdAt / 1000,
});

export function otaOperations(service: OtaService): AwsOperation[] {
  return [
    iotOperation('CreateStream', 'POST', '/streams/{streamId}', (i) => service.createStream(i as never), {
      input: z.object({
        streamId,
        description: description.optional(),
        files,
        // AWS requires the role (S3 access); Thingstead holds the files itself, so it is optional here.
        roleArn: roleArn.optional(),
        tags: tags.optional(),
      }),
    }),
    iotOperation('DescribeStream', 'GET', '/streams/{streamId}', (i) => service.describeStream(i.streamId), {
      input: z.object({ streamId }),
    }),
    iotOperation('UpdateStream', 'PUT', '/streams/{streamId}', (i) => service.updateStream(i as never), {
      input: z.object({
        streamId,
        description: description.optional(),
        files: files.optional(),
        roleArn: roleArn.optional(),
      }),
    }),
    iotOperation(
      'DeleteStream',
      'DELETE',
      '/streams/{streamId}',
      async (i) => {
        await service.deleteStream(i.streamId);
        return {};
      },
      { input: z.object({ streamId }) },
    ),
    iotOperation(
      'ListStreams',
      'GET',
      '/streams',
      async (i) => {
        const limit = i.maxResults ?? 250;
        const r = await service.listStreams(token.decode(i.nextToken), limit, i.ascendingOrder === true);
        return {
          streams: r.streams,
          ...(r.more && r.last ? { nextToken: token.encode(r.last.streamId) } : {}),
        };
      },
      {
        query: { ...listQuery, ascendingOrder: { name: 'isAscendingOrder', type: 'boolean' } },
        input: z.object({
          maxResults: maxResults(250),
          nextToken: awsString().optional(),
          ascendingOrder: awsBool().optional(),
        }),
      },
    ),
    iotOperation(
      'ListOtaFiles',
      'GET',
      '/ota/files',
      async (i) => {
        const limit = i.maxResults ?? 250;
        const rows = await service.listFiles(token.decode(i.nextToken), limit + 1);
        const items = rows.slice(0, limit);
        return {
          files: items.map(fileShape),
          ...(rows.length > limit ? { nextToken: token.encode(items[items.length - 1]!.sha256) } : {}),
        };
      },
      {
        query: listQuery,
        input: z.object({ maxResults: maxResults(250), nextToken: awsString().optional() }),
      },
    ),
    iotOperation(
      'DescribeOtaFile',
      'GET',
      '/ota/files/{ref}',
      async (i) => {
        const f = await service.findFile(i.ref);
        if (!f) throw E.OtaFileNotFound({ file: i.ref });
        return fileShape(f);
      },
      { input: z.object({ ref: awsString({ min: 1, max: 256 }) }) },
    ),
    iotOperation(
      'DeleteOtaFile',
      'DELETE',
      '/ota/files/{sha256}',
      async (i) => {
        await service.deleteFile(i.sha256);
        return {};
      },
      { input: z.object({ sha256 }) },
    ),
  ];
}
