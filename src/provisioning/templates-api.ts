/**
 * The provisioning templates control plane (signing name `iot`; routes, members and errors from the
 * @aws-sdk/client-iot model, reference §3.6): CreateProvisioningTemplate, DescribeProvisioningTemplate,
 * ListProvisioningTemplates, UpdateProvisioningTemplate, DeleteProvisioningTemplate,
 * CreateProvisioningTemplateVersion, ListProvisioningTemplateVersions, DescribeProvisioningTemplateVersion
 * and DeleteProvisioningTemplateVersion.
 *
 * A body is checked by parseTemplate before it is stored (InvalidRequestException naming the first path and
 * how many more problems there are), so the flows never meet a template that cannot work. Limits (AWS's):
 * name 1..36 of [0-9A-Za-z_-], body at most 10 KB, 5 versions per template, description 500 characters.
 * Thingstead's hook is a webhook: `preProvisioningHook.targetArn` is an https:// URL (hook.ts), and only
 * FLEET_PROVISIONING templates take one.
 */
import { z } from 'zod';
import { awsBool, awsInt, awsString, iotOperation, maxResults, type AwsOperation } from '../api/index.js';
import { E } from '../errors/index.js';
import { tagList, type ResourceTags } from '../tags/index.js';
import { parseTemplate } from './template.js';
import type {
  PreProvisioningHook,
  TemplatePatch,
  TemplateRecord,
  TemplatesStore,
  TemplateType,
  TemplateVersionRecord,
} from './templates-store.js';

/** AWS: "Maximum number of versions of a provisioning template: 5". */
export const MAX_TEMPLATE_VERSIONS = 5;
/** AWS: a provisioning template body is at most 10 KB. */
export const MAX_TEMPLATE_BODY_BYTES = 10 * 1024;

const templateName = awsString({
  min: 1,
  max: 36,
  pattern: /^[0-9A-Za-z_-]+$/,
  patternText: '^[0-9A-Za-z_-]+$',
});
const description = awsString({ max: 500, pattern: /^[^\p{C}]*$/u, patternText: '[^\\p{C}]*' });
const roleArn = awsString({ min: 20, max: 2048 });
const templateBody = awsString({ pattern: /^[\s\S]*$/, patternText: '[\\s\\S]*' });
const templateType = z.enum(['FLEET_PROVISIONING', 'JITP'], {
  error: 'Member must satisfy enum value set: [FLEET_PROVISIONING, JITP]',
});
const hook = z
  .object({
    targetArn: awsString({ max: 2048 }),
    payloadVersion: awsString({
      min: 10,
      max: 32,
      pattern: /^[0-9-]+$/,
      patternText: '^[0-9-]+$',
    }).optional(),
  })
  .strict();
/** A path-label or query version id (labels arrive as text). */
const versionId = z.preprocess((v) => (typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v), awsInt());
const listQuery = { maxResults: { type: 'integer' }, nextToken: { type: 'string' } } as const;

export interface TemplatesServiceOptions {
  readonly store: TemplatesStore;
  readonly region: string;
  readonly accountId: string;
  /** Keeps the tags CreateProvisioningTemplate is given (src/tags); without it they are not kept. */
  readonly tags?: ResourceTags;
  /**
   * Why a hook's targetArn cannot be called, or null (the module passes hook.ts's hookUrlProblem with
   * provisioning.allowPlainHttpHooks). Without it, only https:// URLs are accepted.
   */
  readonly hookProblem?: (targetArn: string) => string | null;
  /** Who uses a template (a CA certificate for JITP), for DeleteProvisioningTemplate; null when unused. */
  readonly usedBy?: (templateName: string) => Promise<string | null>;
  readonly now?: () => number;
}

export interface CreateTemplateInput {
  templateName: string;
  templateBody: string;
  provisioningRoleArn: string;
  description?: string;
  enabled?: boolean;
  preProvisioningHook?: PreProvisioningHook;
  tags?: { Key: string; Value?: string }[];
  type?: TemplateType;
}

export interface UpdateTemplateInput {
  templateName: string;
  description?: string;
  enabled?: boolean;
  defaultVersionId?: number;
  provisioningRoleArn?: string;
  preProvisioningHook?: PreProvisioningHook;
  removePreProvisioningHook?: boolean;
}

/** The default hook check: an https:// URL (Thingstead calls a webhook where AWS calls a Lambda ARN). */
function httpsOnly(targetArn: string): string | null {
  try {
    if (new URL(targetArn).protocol === 'https:') return null;
  } catch {
    /* refused below */
  }
  return `targetArn ${JSON.stringify(targetArn)} is not an https:// URL; Thingstead calls a webhook instead of a Lambda ARN`;
}

/** Opaque page tokens over a key. */
const encodeToken = (key: string) => Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url');
function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined || token === '') return undefined;
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof v?.k === 'string') return v.k as string;
  } catch {
    /* refused below */
  }
  throw E.NextTokenInvalid({ token: token.slice(0, 64) });
}

/**
 * The templates service: the operations' semantics, over the store.
 * @example const service = createTemplatesService({ store, region, accountId, tags });
 */
export function createTemplatesService(options: TemplatesServiceOptions) {
  const { store } = options;
  const now = options.now ?? Date.now;
  const arn = (name: string) =>
    `arn:aws:iot:${options.region}:${options.accountId}:provisioningtemplate/${name}`;

  function checkBody(body: string): void {
    const size = Buffer.byteLength(body, 'utf8');
    if (size > MAX_TEMPLATE_BODY_BYTES) {
      throw E.ProvisioningTemplateBodySize({ size, max: MAX_TEMPLATE_BODY_BYTES });
    }
    const parsed = parseTemplate(body);
    if (!parsed.ok) {
      const [first, ...rest] = parsed.errors;
      throw E.ProvisioningTemplateBody({
        path: first?.path || '(the whole body)',
        problem: first?.message ?? 'not a template',
        others: rest.length
          ? `; and ${rest.length} more: ${rest
              .slice(0, 4)
              .map((e) => e.path || '(body)')
              .join(', ')}${rest.length > 4 ? ', ...' : ''}`
          : '',
      });
    }
  }

  function checkHook(name: string, type: TemplateType, h: PreProvisioningHook | undefined): void {
    if (!h) return;
    if (type !== 'FLEET_PROVISIONING') throw E.ProvisioningTemplateHookType({ templateName: name, type });
    const problem = (options.hookProblem ?? httpsOnly)(h.targetArn);
    if (problem) throw E.ProvisioningTemplateHookTarget({ problem });
  }

  async function mustGet(name: string): Promise<TemplateRecord> {
    const t = await store.get(name);
    if (!t) throw E.ProvisioningTemplateNotFound({ templateName: name });
    return t;
  }

  const summary = (t: TemplateRecord) => ({
    templateArn: arn(t.templateName),
    templateName: t.templateName,
    ...(t.description !== null ? { description: t.description } : {}),
    creationDate: new Date(t.createdAt),
    lastModifiedDate: new Date(t.updatedAt),
    enabled: t.enabled,
    type: t.type,
  });
  const versionSummary = (v: TemplateVersionRecord, t: TemplateRecord) => ({
    versionId: v.versionId,
    creationDate: new Date(v.createdAt),
    isDefaultVersion: v.versionId === t.defaultVersionId,
  });

  return {
    /** Whether a template exists (the tags context asks before tagging its ARN). */
    async exists(name: string): Promise<boolean> {
      return (await store.get(name)) !== null;
    },

    async createProvisioningTemplate(input: CreateTemplateInput) {
      const type = input.type ?? 'FLEET_PROVISIONING';
      options.tags?.check(input.tags);
      checkBody(input.templateBody);
      checkHook(input.templateName, type, input.preProvisioningHook);
      const at = now();
      const record: TemplateRecord = {
        templateName: input.templateName,
        type,
        description: input.description ?? null,
        // AWS: a template is created disabled unless `enabled` is true.
        enabled: input.enabled ?? false,
        provisioningRoleArn: input.provisioningRoleArn,
        preProvisioningHook: input.preProvisioningHook ?? null,
        defaultVersionId: 1,
        createdAt: at,
        updatedAt: at,
      };
      if (!(await store.insert(record, input.templateBody))) {
        throw E.ProvisioningTemplateExists(
          { templateName: input.templateName },
          { resourceId: input.templateName, resourceArn: arn(input.templateName) },
        );
      }
      await options.tags?.add(arn(input.templateName), input.tags);
      return { templateArn: arn(input.templateName), templateName: input.templateName, defaultVersionId: 1 };
    },

    async describeProvisioningTemplate(input: { templateName: string }) {
      const t = await mustGet(input.templateName);
      const version = await store.getVersion(t.templateName, t.defaultVersionId);
      return {
        ...summary(t),
        defaultVersionId: t.defaultVersionId,
        ...(version ? { templateBody: version.body } : {}),
        provisioningRoleArn: t.provisioningRoleArn,
        ...(t.preProvisioningHook ? { preProvisioningHook: t.preProvisioningHook } : {}),
      };
    },

    async listProvisioningTemplates(input: { maxResults?: number; nextToken?: string }) {
      const limit = input.maxResults ?? 250;
      const rows = await store.list({ after: decodeToken(input.nextToken), limit: limit + 1 });
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return {
        templates: items.map(summary),
        ...(rows.length > limit && last ? { nextToken: encodeToken(last.templateName) } : {}),
      };
    },

    async updateProvisioningTemplate(input: UpdateTemplateInput) {
      if (input.preProvisioningHook && input.removePreProvisioningHook)
        throw E.ProvisioningTemplateHookBoth();
      const current = await mustGet(input.templateName);
      checkHook(input.templateName, current.type, input.preProvisioningHook);
      const patch: TemplatePatch = {
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.enabled !== undefined ? { enabled: input.enabled } : {}),
        ...(input.defaultVersionId !== undefined ? { defaultVersionId: input.defaultVersionId } : {}),
        ...(input.provisioningRoleArn !== undefined
          ? { provisioningRoleArn: input.provisioningRoleArn }
          : {}),
        ...(input.preProvisioningHook
          ? { preProvisioningHook: input.preProvisioningHook }
          : input.removePreProvisioningHook
            ? { preProvisioningHook: null }
            : {}),
      };
      const r = await store.update(input.templateName, patch, now());
      if (r === 'not_found') throw E.ProvisioningTemplateNotFound({ templateName: input.templateName });
      if (r === 'no_version') {
        throw E.ProvisioningTemplateVersionNotFound({
          templateName: input.templateName,
          versionId: String(input.defaultVersionId),
        });
      }
      return {};
    },

    async deleteProvisioningTemplate(input: { templateName: string }) {
      await mustGet(input.templateName);
      const user = (await options.usedBy?.(input.templateName)) ?? null;
      if (user !== null) throw E.ProvisioningTemplateInUse({ templateName: input.templateName, user });
      if (!(await store.delete(input.templateName))) {
        throw E.ProvisioningTemplateNotFound({ templateName: input.templateName });
      }
      await options.tags?.removeAll(arn(input.templateName));
      return {};
    },

    async createProvisioningTemplateVersion(input: {
      templateName: string;
      templateBody: string;
      setAsDefault?: boolean;
    }) {
      checkBody(input.templateBody);
      const r = await store.addVersion(input.templateName, input.templateBody, {
        setAsDefault: input.setAsDefault ?? false,
        now: now(),
        maxVersions: MAX_TEMPLATE_VERSIONS,
      });
      if (r === 'not_found') throw E.ProvisioningTemplateNotFound({ templateName: input.templateName });
      if (r === 'limit') {
        throw E.ProvisioningTemplateVersionsLimit({
          templateName: input.templateName,
          max: MAX_TEMPLATE_VERSIONS,
        });
      }
      return {
        templateArn: arn(input.templateName),
        templateName: input.templateName,
        versionId: r.versionId,
        isDefaultVersion: r.isDefault,
      };
    },

    async listProvisioningTemplateVersions(input: {
      templateName: string;
      maxResults?: number;
      nextToken?: string;
    }) {
      const t = await mustGet(input.templateName);
      const limit = input.maxResults ?? 250;
      const after = decodeToken(input.nextToken);
      const afterId = after === undefined ? undefined : Number(after);
      if (afterId !== undefined && !Number.isInteger(afterId)) {
        throw E.NextTokenInvalid({ token: String(input.nextToken).slice(0, 64) });
      }
      const rows = await store.listVersions(t.templateName, {
        ...(afterId !== undefined ? { after: afterId } : {}),
        limit: limit + 1,
      });
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return {
        versions: items.map((v) => versionSummary(v, t)),
        ...(rows.length > limit && last ? { nextToken: encodeToken(String(last.versionId)) } : {}),
      };
    },

    async describeProvisioningTemplateVersion(input: { templateName: string; versionId: number }) {
      const t = await mustGet(input.templateName);
      const v = await store.getVersion(t.templateName, input.versionId);
      if (!v) {
        throw E.ProvisioningTemplateVersionNotFound({
          templateName: input.templateName,
          versionId: String(input.versionId),
        });
      }
      return { ...versionSummary(v, t), templateBody: v.body };
    },

    async deleteProvisioningTemplateVersion(input: { templateName: string; versionId: number }) {
      await mustGet(input.templateName);
      const r = await store.deleteVersion(input.templateName, input.versionId);
      const args = { templateName: input.templateName, versionId: String(input.versionId) };
      if (r === 'default') throw E.ProvisioningTemplateDefaultVersion(args);
      if (r === 'not_found') throw E.ProvisioningTemplateVersionNotFound(args);
      return {};
    },
  };
}

export type TemplatesService = ReturnType<typeof createTemplatesService>;

/**
 * The operations, bound to the service (the module adds them to the context's operations).
 * @example operations: [...provisioningTemplateOperations(createTemplatesService({ store, region, accountId }))]
 */
export function provisioningTemplateOperations(service: TemplatesService): AwsOperation[] {
  const op = iotOperation;
  return [
    op(
      'CreateProvisioningTemplate',
      'POST',
      '/provisioning-templates',
      (i) => service.createProvisioningTemplate(i as never),
      {
        input: z
          .object({
            templateName,
            templateBody,
            provisioningRoleArn: roleArn,
            description: description.optional(),
            enabled: awsBool().optional(),
            preProvisioningHook: hook.optional(),
            tags: tagList.optional(),
            type: templateType.optional(),
          })
          .strict(),
      },
    ),
    op(
      'DescribeProvisioningTemplate',
      'GET',
      '/provisioning-templates/{templateName}',
      (i) => service.describeProvisioningTemplate(i as never),
      { input: z.object({ templateName }) },
    ),
    op(
      'ListProvisioningTemplates',
      'GET',
      '/provisioning-templates',
      (i) => service.listProvisioningTemplates(i),
      {
        query: listQuery,
        input: z.object({ maxResults: maxResults(), nextToken: z.string().optional() }),
      },
    ),
    op(
      'UpdateProvisioningTemplate',
      'PATCH',
      '/provisioning-templates/{templateName}',
      (i) => service.updateProvisioningTemplate(i as never),
      {
        input: z
          .object({
            templateName,
            description: description.optional(),
            enabled: awsBool().optional(),
            defaultVersionId: awsInt().optional(),
            provisioningRoleArn: roleArn.optional(),
            preProvisioningHook: hook.optional(),
            removePreProvisioningHook: awsBool().optional(),
          })
          .strict(),
      },
    ),
    op(
      'DeleteProvisioningTemplate',
      'DELETE',
      '/provisioning-templates/{templateName}',
      (i) => service.deleteProvisioningTemplate(i as never),
      { input: z.object({ templateName }) },
    ),
    op(
      'CreateProvisioningTemplateVersion',
      'POST',
      '/provisioning-templates/{templateName}/versions',
      (i) => service.createProvisioningTemplateVersion(i as never),
      {
        query: { setAsDefault: { type: 'boolean' } },
        input: z.object({ templateName, templateBody, setAsDefault: awsBool().optional() }).strict(),
      },
    ),
    op(
      'ListProvisioningTemplateVersions',
      'GET',
      '/provisioning-templates/{templateName}/versions',
      (i) => service.listProvisioningTemplateVersions(i as never),
      {
        query: listQuery,
        input: z.object({ templateName, maxResults: maxResults(), nextToken: z.string().optional() }),
      },
    ),
    op(
      'DescribeProvisioningTemplateVersion',
      'GET',
      '/provisioning-templates/{templateName}/versions/{versionId}',
      (i) => service.describeProvisioningTemplateVersion(i as never),
      { input: z.object({ templateName, versionId }) },
    ),
    op(
      'DeleteProvisioningTemplateVersion',
      'DELETE',
      '/provisioning-templates/{templateName}/versions/{versionId}',
      (i) => service.deleteProvisioningTemplateVersion(i as never),
      { input: z.object({ templateName, versionId }) },
    ),
  ];
}
