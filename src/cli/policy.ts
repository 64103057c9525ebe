import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { encodePath, type SignedFetchOptions } from '../api/index.js';
import { certificateInfo } from '../identity/index.js';
import {
  bindPolicies,
  checkPolicyDocument,
  compilePolicy,
  type AuthContext,
  type CompiledPolicy,
  type PolicyProblem,
} from '../policy/index.js';
import { resolveCertificateId } from './certs.js';
import {
  CliError,
  call,
  connectionOptions,
  printTable,
  resolveConnection,
  withConnection,
  type ConnectionFlags,
} from './connection.js';

/**
 * `thingstead policy list|attach|detach`: policies and their attachments over the API (ListPolicies,
 * ListAttachedPolicies, ListTargetsForPolicy, AttachPolicy, DetachPolicy). A detach reaches connected
 * devices as a change event: a device whose iot:Connect came from that policy is dropped.
 * `thingstead policy test|validate`: the policy simulator. `test` fetches the principal's effective
 * policies (its certificate's and its thing groups') and its context (thing, attributes, certificate
 * fields) over the API, evaluates locally with the broker's engine, and names the deciding statement.
 */

type Flags = ConnectionFlags & Record<string, any>;

const RESOURCE_TYPE: Record<string, string> = {
  'iot:connect': 'client',
  'iot:subscribe': 'topicfilter',
  'iot:publish': 'topic',
  'iot:receive': 'topic',
  'iot:retainpublish': 'topic',
  'iot:getretainedmessage': 'topic',
};

export interface SimulationInput {
  principal: string;
  action: string;
  resource: string;
  clientId?: string;
  /** Extra documents to evaluate as if attached (not stored). */
  extraDocuments?: string[];
}

export interface SimulationResult {
  allowed: boolean;
  reason: 'allowed' | 'explicit-deny' | 'implicit-deny';
  resource: string;
  text: string;
}

/** Run one simulation against a live platform (used by the CLI and its test). */
export async function simulate(
  conn: ReturnType<typeof resolveConnection>,
  input: SimulationInput,
): Promise<SimulationResult> {
  let principal = input.principal;
  if (/^[a-fA-F0-9]{64}$/.test(principal)) {
    const d = await call(conn, 'GET', `/certificates/${principal.toLowerCase()}`);
    principal = d.certificateDescription.certificateArn as string;
  }
  const context: { -readonly [K in keyof AuthContext]: AuthContext[K] } = { clientId: input.clientId };
  let arnPrefix = '';
  const certId = /:cert\/([a-fA-F0-9]{64})$/.exec(principal)?.[1];
  if (certId) {
    arnPrefix = principal.split(':cert/')[0]!;
    const d = await call(conn, 'GET', `/certificates/${certId}`);
    context.certificate = certificateInfo(d.certificateDescription.certificatePem as string);
    const things = ((
      await call(conn, 'GET', '/principals/things', { headers: { 'x-amzn-principal': principal } })
    ).things ?? []) as string[];
    const thingName =
      input.clientId && things.includes(input.clientId) ? input.clientId : [...things].sort()[0];
    context.isAttached = input.clientId !== undefined && things.includes(input.clientId);
    if (thingName) {
      const t = await call(conn, 'GET', `/things/${encodePath(thingName)}`);
      context.thing = { name: thingName, typeName: t.thingTypeName, attributes: t.attributes };
      context.clientId ??= thingName;
    }
  } else if (principal !== 'anonymous') {
    throw new CliError(
      `--principal must be a certificate ARN, a certificate id or "anonymous"; got ${principal}`,
    );
  }
  const eff = await call(conn, 'POST', '/effective-policies', {
    query: { thingName: context.thing?.name },
    body: { principal },
  });
  const policies: CompiledPolicy[] = (
    eff.effectivePolicies as Array<{ policyName: string; policyArn: string; policyDocument: string }>
  ).map((p) => {
    arnPrefix ||= p.policyArn.split(':policy/')[0]!;
    return compilePolicy(p.policyName, 'default', p.policyDocument);
  });
  (input.extraDocuments ?? []).forEach((doc, i) =>
    policies.push(compilePolicy(`--policy-file #${i + 1}`, 'draft', doc)),
  );
  if (!arnPrefix) arnPrefix = `arn:aws:iot:${conn.region}:000000000000`;
  let resource = input.resource;
  if (!resource.startsWith('arn:') && resource !== '*') {
    const type = RESOURCE_TYPE[input.action.toLowerCase()] ?? 'topic';
    resource = `${arnPrefix}:${type}/${resource}`;
  }
  const decision = bindPolicies(policies, context).explain(input.action, resource);
  const s = decision.statement;
  const where = s
    ? `policy ${s.policyName}${s.policyVersionId !== 'default' ? ` (version ${s.policyVersionId})` : ''}, Statement[${s.statementIndex}]${s.sid ? ` (Sid ${s.sid})` : ''}`
    : '';
  const text =
    decision.reason === 'allowed'
      ? `ALLOW  ${input.action} on ${resource}\n  decided by ${where} (${s!.effect})`
      : decision.reason === 'explicit-deny'
        ? `DENY   ${input.action} on ${resource}\n  explicit deny by ${where}`
        : `DENY   ${input.action} on ${resource}\n  implicit deny: no statement of ${policies.length ? policies.map((p) => p.name).join(', ') : '(no policies attached)'} allows it`;
  return { allowed: decision.allowed, reason: decision.reason, resource, text };
}

export function registerPolicy(program: Command): void {
  const policy = connectionOptions(
    new Command('policy').description(
      'Policies: list, attach to and detach from certificates and thing groups; simulate and validate.',
    ),
  );
  policy.addHelpText(
    'after',
    `
Examples:
  thingstead policy list
  thingstead policy attach sensor-policy --target 3f9c2a          # a certificate id (prefix)
  thingstead policy detach sensor-policy --target arn:aws:iot:us-east-1:000000000000:thinggroup/floor-1
  thingstead policy test --principal 3f9c2a --action iot:Publish --resource sensors/t1`,
  );
  registerAttachments(policy);
  policy
    .command('test')
    .description(
      'Would this principal be allowed this action on this resource? Names the deciding statement.',
    )
    .requiredOption('--principal <arn>', 'certificate ARN, certificate id, or "anonymous"')
    .requiredOption('--action <action>', 'e.g. iot:Connect, iot:Publish, iot:Subscribe, iot:Receive')
    .requiredOption('--resource <arn|topic>', 'a full ARN, or a topic / filter / client id to build it from')
    .option(
      '--client-id <id>',
      'the MQTT client id (for ${iot:ClientId} and IsAttached; default the thing name)',
    )
    .option('--policy-file <file>', 'also evaluate this document as if attached (a draft)')
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<Flags>();
      const result = await simulate(resolveConnection(flags), {
        principal: flags.principal,
        action: flags.action,
        resource: flags.resource,
        clientId: flags.clientId,
        extraDocuments: flags.policyFile ? [readFileSync(flags.policyFile, 'utf8')] : [],
      });
      if (flags.json) console.log(JSON.stringify(result, null, 2));
      else console.log(result.text);
      process.exitCode = result.allowed ? 0 : 1;
    });
  policy
    .command('validate <file>')
    .description(
      'Check a policy document: every error and warning at once (unknown actions and resource types too), ' +
        'each with its statement and JSON path. Exit 2 on errors (with --strict, on warnings too).',
    )
    .option('--strict', 'treat warnings as errors')
    .action((file: string, opts: { strict?: boolean }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<Flags>();
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError(`${file}: ${(err as Error).message}`);
      }
      const report = validationReport(file, checkPolicyDocument(text), opts.strict === true);
      if (flags.json) console.log(JSON.stringify(report.json, null, 2));
      else if (report.ok && report.lines.length === 1) console.log(report.lines[0]);
      else (report.ok ? console.log : console.error)(report.lines.join('\n'));
      process.exitCode = report.ok ? 0 : 2;
    });
  program.addCommand(policy);
}

const TARGET_HELP =
  'a certificate ARN (arn:aws:iot:<region>:<account>:cert/<id>), a certificate id or unique id prefix, ' +
  'or a thing group ARN (…:thinggroup/<name>)';

/** An ARN for --target: ARNs as given; a certificate id (or unique prefix) becomes its certificate ARN. */
async function resolveTarget(conn: SignedFetchOptions, target: string | undefined): Promise<string> {
  if (!target) throw new CliError(`--target is required: ${TARGET_HELP}.`);
  if (target.startsWith('arn:')) return target;
  if (/^[a-fA-F0-9]{6,64}$/.test(target)) {
    const id = await resolveCertificateId(conn, target);
    try {
      const d = await call(conn, 'GET', `/certificates/${id}`);
      return d.certificateDescription.certificateArn as string;
    } catch (err) {
      if (err instanceof CliError && err.message.startsWith('ResourceNotFoundException'))
        throw new CliError(
          `no certificate ${id} on this platform.\nList them with \`thingstead certs list\`.`,
        );
      throw err;
    }
  }
  throw new CliError(
    `--target ${target}: expected ${TARGET_HELP}.\n` +
      'Find certificate ids with `thingstead certs list`, group names with `thingstead groups list`.',
  );
}

/** The call, with a not-found error naming the policy and how to list them. */
async function policyCall(
  conn: SignedFetchOptions,
  policyName: string,
  method: string,
  path: string,
  request: Parameters<typeof call>[3] = {},
): Promise<any> {
  try {
    return await call(conn, method, path, request);
  } catch (err) {
    if (
      err instanceof CliError &&
      err.message.startsWith('ResourceNotFoundException') &&
      /polic/i.test(err.message)
    )
      throw new CliError(
        `${err.message.split('\n')[0]}\nList the policies with \`thingstead policy list\`; ` +
          'create one with `aws iot create-policy` (or CreatePolicy in an SDK).',
      );
    throw err;
  }
}

async function pages(
  conn: SignedFetchOptions,
  method: string,
  path: string,
  key: string,
  query: Record<string, string | boolean | undefined> = {},
): Promise<any[]> {
  const items: any[] = [];
  let marker: string | undefined;
  do {
    const page = await call(conn, method, path, { query: { ...query, marker, pageSize: 250 } });
    items.push(...((page[key] as any[]) ?? []));
    marker = page.nextMarker;
  } while (marker);
  return items;
}

function registerAttachments(policy: Command): void {
  policy
    .command('list')
    .description(
      'List policies with their targets; with --target, only the policies attached to that target.',
    )
    .option('--target <arn|cert-id>', `only policies attached to this target: ${TARGET_HELP}`)
    .option('--recursive', 'with --target: include policies inherited from parent groups')
    .action(
      withConnection(async (conn, flags) => {
        if (flags.target) {
          const target = await resolveTarget(conn, flags.target);
          const items = await pages(conn, 'POST', `/attached-policies/${encodePath(target)}`, 'policies', {
            recursive: flags.recursive ? true : undefined,
          });
          if (flags.json) console.log(JSON.stringify({ target, policies: items }, null, 2));
          else printTable(items, ['policyName', 'policyArn']);
          return;
        }
        const items = await pages(conn, 'GET', '/policies', 'policies');
        const rows = await Promise.all(
          items.map(async (p) => ({
            ...p,
            targets: await pages(conn, 'POST', `/policy-targets/${encodePath(p.policyName)}`, 'targets'),
          })),
        );
        if (flags.json) console.log(JSON.stringify({ policies: rows }, null, 2));
        else
          printTable(
            rows.map((p) => ({
              name: p.policyName,
              targets: p.targets.length,
              attachedTo: p.targets.map(shortTarget).join(', '),
            })),
          );
      }),
    );
  policy
    .command('attach <policy>')
    .description(
      'Attach a policy to a certificate or a thing group (AttachPolicy). Connected devices gain the permissions at once.',
    )
    .requiredOption('--target <arn|cert-id>', TARGET_HELP)
    .action(
      withConnection(async (conn, flags, name) => {
        const target = await resolveTarget(conn, flags.target);
        await policyCall(conn, name, 'PUT', `/target-policies/${encodePath(name)}`, {
          body: { target },
        });
        if (flags.json) console.log(JSON.stringify({ policyName: name, target }, null, 2));
        else console.log(`attached policy ${name} to ${target}`);
      }),
    );
  policy
    .command('detach <policy>')
    .description(
      'Detach a policy from a certificate or a thing group (DetachPolicy). Connected devices lose its ' +
        'permissions at once: one left without iot:Connect is disconnected.',
    )
    .requiredOption('--target <arn|cert-id>', TARGET_HELP)
    .action(
      withConnection(async (conn, flags, name) => {
        const target = await resolveTarget(conn, flags.target);
        await policyCall(conn, name, 'POST', `/target-policies/${encodePath(name)}`, {
          body: { target },
        });
        if (flags.json) console.log(JSON.stringify({ policyName: name, target }, null, 2));
        else console.log(`detached policy ${name} from ${target}`);
      }),
    );
}

/** A target ARN shortened for a table: cert/<first 12 of the id>, thinggroup/<name>. */
function shortTarget(arn: string): string {
  const resource = arn.split(':').slice(5).join(':');
  const cert = /^cert\/([a-f0-9]{12})[a-f0-9]{52}$/.exec(resource);
  return cert ? `cert/${cert[1]}…` : resource || arn;
}

/** `policy validate` output: a summary line, then one line per problem in statement order. */
export function validationReport(
  file: string,
  problems: readonly PolicyProblem[],
  strict: boolean,
): { ok: boolean; lines: string[]; json: object } {
  const sorted = [...problems].sort(
    (a, b) =>
      (a.statement ?? -1) - (b.statement ?? -1) ||
      (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1),
  );
  const errors = sorted.filter((p) => p.severity === 'error').length;
  const warnings = sorted.length - errors;
  const ok = errors === 0 && (!strict || warnings === 0);
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const summary =
    sorted.length === 0
      ? `${file}: valid`
      : `${file}: ${errors === 0 ? 'valid, with ' : 'invalid: '}${[errors && count(errors, 'error'), warnings && count(warnings, 'warning')].filter(Boolean).join(', ')}${strict && warnings && !errors ? ' (--strict: warnings are errors)' : ''}`;
  const lines = [
    summary,
    ...sorted.map(
      (p) =>
        `  ${p.severity === 'error' || strict ? 'error  ' : 'warning'}  ${p.statement !== undefined ? `statement ${p.statement}  ` : ''}${p.path ? `${p.path}: ` : ''}${p.message}`,
    ),
  ];
  return { ok, lines, json: { file, valid: ok, errors, warnings, problems: sorted } };
}
