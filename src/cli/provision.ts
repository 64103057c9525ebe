import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, join, resolve } from 'node:path';
import { Command } from 'commander';
import { encodePath, type SignedFetchOptions } from '../api/index.js';
import {
  CliError,
  call,
  collect,
  connectionOptions,
  listAll,
  parseAttributes,
  printRecord,
  printTable,
  withConnection,
  type CommandFlags,
} from './connection.js';

/**
 * `thingstead provision ...`: fleet provisioning over the AWS-compatible API (the same calls as `aws iot
 * create-provisioning-template`, `create-provisioning-claim`, `register-thing`, `start-thing-registration-task`
 * ...) and Thingstead's provisioning traces (`trace`): why a device was refused, step by step.
 */

const DEFAULT_ROLE = 'arn:aws:iam::000000000000:role/thingstead-provisioning';

function readBody(file: string | undefined, what: string): string {
  if (!file) throw new CliError(`${what}: give --template-file FILE (the template JSON)`);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

const epoch = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : v);

function writeSecret(path: string, text: string) {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Serve one local file on a loopback port until it was fetched once (bulk --file); returns its URL. */
async function serveOnce(path: string): Promise<{ url: string; fetched: Promise<void>; close(): void }> {
  const body = readFileSync(path);
  let done!: () => void;
  const fetched = new Promise<void>((r) => (done = r));
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/x-ndjson');
    res.on('finish', done);
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/${encodeURIComponent(basename(path))}`,
    fetched,
    close: () => server.close(),
  };
}

function printTrace(t: Record<string, any>) {
  console.log(
    `${t.attemptId}  ${new Date(t.startedAt).toISOString()}  ${t.flow}  ${t.templateName ?? '(inline template)'}  ` +
      `${t.result}${t.reason ? ` (${t.reason})` : ''}  ${t.durationMs} ms`,
  );
  if (t.thingName || t.certificateId)
    console.log(
      `  thing ${t.thingName ?? '-'}  certificate ${t.certificateId ?? '-'}  client ${t.clientId ?? '-'}`,
    );
  for (const s of (t.steps ?? []) as Array<Record<string, any>>) {
    const detail = s.detail ? ` ${JSON.stringify(s.detail)}` : '';
    console.log(`  ${String(s.atMs).padStart(9)} ms  ${s.ok ? ' ' : '!'} ${s.step}${detail}`);
  }
  if (t.message) console.log(`  refused: ${t.message}`);
}

async function waitTask(conn: SignedFetchOptions, taskId: string, watch: boolean) {
  for (;;) {
    const d = await call(conn, 'GET', `/thing-registration-tasks/${encodePath(taskId)}`);
    const line = `${new Date().toISOString()}  ${d.status}  ${d.percentageProgress}%  succeeded ${d.successCount}  failed ${d.failureCount}`;
    console.log(line);
    if (!watch || !['InProgress', 'Cancelling'].includes(d.status as string)) return d;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export function registerProvision(program: Command): void {
  const provision = connectionOptions(
    new Command('provision').description(
      'Fleet provisioning: templates, claim certificates, RegisterThing, bulk registration tasks and provisioning traces.',
    ),
  );

  // ---- templates ---------------------------------------------------------------------------------------
  const templates = provision.command('templates').description('Provisioning templates.');
  templates
    .command('list')
    .description('List provisioning templates.')
    .action(
      withConnection(async (conn, flags) => {
        const items = await listAll(conn, '/provisioning-templates', 'templates', {}, 10_000);
        if (flags.json) return console.log(JSON.stringify(items, null, 2));
        printTable(
          items.map((t) => ({
            name: t.templateName,
            type: t.type,
            enabled: t.enabled,
            description: t.description,
          })),
        );
      }),
    );
  templates
    .command('describe <templateName>')
    .description('Show a template (its default version body, hook and settings).')
    .action(
      withConnection(async (conn, flags, name) => {
        const t = await call(conn, 'GET', `/provisioning-templates/${encodePath(name)}`);
        if (flags.json) return console.log(JSON.stringify(t, null, 2));
        printRecord({
          ...t,
          creationDate: epoch(t.creationDate),
          lastModifiedDate: epoch(t.lastModifiedDate),
        });
      }),
    );
  templates
    .command('create <templateName>')
    .description('Create a provisioning template from a JSON file.')
    .requiredOption('--template-file <file>', 'the template body (JSON)')
    .option('--type <type>', 'FLEET_PROVISIONING (default) or JITP')
    .option('--hook <url>', 'pre-provisioning hook: an https:// (or loopback http://) URL')
    .option('--role-arn <arn>', 'provisioningRoleArn (kept for compatibility)', DEFAULT_ROLE)
    .option('--description <text>', 'description')
    .option('--disabled', 'create it disabled')
    .action(
      withConnection(async (conn, flags, name) => {
        const body = {
          templateName: name,
          templateBody: readBody(flags.templateFile as string, 'create'),
          provisioningRoleArn: flags.roleArn,
          enabled: !flags.disabled,
          ...(flags.type ? { type: flags.type } : {}),
          ...(flags.description ? { description: flags.description } : {}),
          ...(flags.hook
            ? { preProvisioningHook: { targetArn: flags.hook, payloadVersion: '2020-04-01' } }
            : {}),
        };
        const r = await call(conn, 'POST', '/provisioning-templates', { body });
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        console.log(`created template ${r.templateName} (${r.templateArn})`);
        console.log(`give a device a claim: thingstead provision claim ${r.templateName} --out ./claim`);
      }),
    );
  templates
    .command('delete <templateName>')
    .description('Delete a provisioning template.')
    .action(
      withConnection(async (conn, _flags, name) => {
        await call(conn, 'DELETE', `/provisioning-templates/${encodePath(name)}`);
        console.log(`deleted template ${name}`);
      }),
    );

  // ---- claim, register ---------------------------------------------------------------------------------
  provision
    .command('claim <templateName>')
    .description(
      'CreateProvisioningClaim: a short-lived claim certificate (5 minutes) that may only use the template’s provisioning topics.',
    )
    .requiredOption('--out <dir>', 'write claim.pem, claim.key (mode 0600) and ca.pem here')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'POST', `/provisioning-templates/${encodePath(name)}/provisioning-claim`);
        const dir = resolve(String(flags.out));
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(join(dir, 'claim.pem'), r.certificatePem as string);
        writeSecret(join(dir, 'claim.key'), r.keyPair.PrivateKey as string);
        if (flags.json)
          return console.log(
            JSON.stringify({ certificateId: r.certificateId, expiration: r.expiration, dir }, null, 2),
          );
        console.log(
          `claim certificate ${r.certificateId} written to ${dir} (valid until ${epoch(r.expiration)})`,
        );
        console.log(
          `the device connects with it and publishes to $aws/certificates/create/json, then $aws/provisioning-templates/${name}/provision/json`,
        );
      }),
    );

  provision
    .command('register')
    .description('RegisterThing: provision one thing from a template body and parameters.')
    .requiredOption('--template-file <file>', 'the template body (JSON)')
    .option('--param <name=value>', 'a template parameter (repeatable)', collect)
    .option('--out <file>', 'write the certificate PEM here (when the template makes one)')
    .action(
      withConnection(async (conn, flags) => {
        const r = await call(conn, 'POST', '/things', {
          body: {
            templateBody: readBody(flags.templateFile as string, 'register'),
            parameters: parseAttributes(flags.param as string[] | undefined) ?? {},
          },
        });
        if (flags.out && r.certificatePem) writeFileSync(String(flags.out), r.certificatePem as string);
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        printRecord(r.resourceArns as Record<string, unknown>);
      }),
    );

  // ---- bulk ----------------------------------------------------------------------------------------------
  const bulk = provision.command('bulk').description('Bulk registration tasks (StartThingRegistrationTask).');
  bulk
    .command('start')
    .description(
      'Register a thing per line of a file of parameters (one JSON object per line). The platform reads ' +
        '<provisioning.bulkInputDir>/<bucket>/<key>, or an http(s) URL; --file serves a file of this machine to a platform on loopback.',
    )
    .requiredOption('--template-file <file>', 'the template body (JSON)')
    .option('--url <url>', 'an http(s) URL the platform fetches the lines from')
    .option('--bucket <folder>', 'a folder under provisioning.bulkInputDir on the platform')
    .option('--key <path>', 'the file in that folder')
    .option(
      '--file <path>',
      'a local file, served to the platform once (the platform must be on this machine)',
    )
    .option('--role-arn <arn>', 'roleArn (kept for compatibility)', DEFAULT_ROLE)
    .option('--wait', 'follow the task until it ends')
    .action(
      withConnection(async (conn, flags) => {
        const given = [flags.url, flags.bucket || flags.key, flags.file].filter(Boolean).length;
        if (given !== 1)
          throw new CliError('give exactly one of --url URL, --bucket FOLDER --key PATH, or --file PATH');
        let served: Awaited<ReturnType<typeof serveOnce>> | null = null;
        let bucket = String(flags.bucket ?? 'url');
        let key = String(flags.key ?? flags.url ?? '');
        if (flags.file) {
          const host = new URL(conn.endpoint).hostname;
          if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host))
            throw new CliError(
              `--file works with a platform on this machine (the endpoint is ${host}); copy the file under its provisioning.bulkInputDir and use --bucket/--key, or give --url`,
            );
          served = await serveOnce(String(flags.file));
          bucket = 'url';
          key = served.url;
        }
        if (!flags.file && !flags.url && (!flags.bucket || !flags.key))
          throw new CliError('--bucket and --key go together');
        try {
          const r = await call(conn, 'POST', '/thing-registration-tasks', {
            body: {
              templateBody: readBody(flags.templateFile as string, 'bulk start'),
              inputFileBucket: bucket,
              inputFileKey: key,
              roleArn: flags.roleArn,
            },
          });
          if (served) await Promise.race([served.fetched, new Promise((res) => setTimeout(res, 60_000))]);
          if (flags.json && !flags.wait) return console.log(JSON.stringify(r, null, 2));
          console.log(`started task ${r.taskId}`);
          if (flags.wait) await waitTask(conn, r.taskId as string, true);
          else console.log(`follow it: thingstead provision bulk describe ${r.taskId} --watch`);
        } finally {
          served?.close();
        }
      }),
    );
  bulk
    .command('describe <taskId>')
    .description('Status and counts of a task.')
    .option('--watch', 'redraw until the task ends')
    .action(
      withConnection(async (conn, flags: CommandFlags, taskId) => {
        if (flags.json && !flags.watch)
          return console.log(
            JSON.stringify(
              await call(conn, 'GET', `/thing-registration-tasks/${encodePath(taskId)}`),
              null,
              2,
            ),
          );
        await waitTask(conn, taskId, !!flags.watch);
      }),
    );
  bulk
    .command('list')
    .description('List tasks.')
    .option('--status <status>', 'InProgress, Completed, Failed, Cancelled or Cancelling')
    .action(
      withConnection(async (conn, flags) => {
        const ids = await listAll(
          conn,
          '/thing-registration-tasks',
          'taskIds',
          { status: flags.status },
          10_000,
        );
        if (flags.json) return console.log(JSON.stringify(ids, null, 2));
        for (const id of ids) console.log(id);
      }),
    );
  bulk
    .command('stop <taskId>')
    .description('Stop a task (lines already registered stay).')
    .action(
      withConnection(async (conn, _flags, taskId) => {
        await call(conn, 'PUT', `/thing-registration-tasks/${encodePath(taskId)}/cancel`);
        console.log(`stopping task ${taskId}`);
      }),
    );
  bulk
    .command('report <taskId>')
    .description('Print the per-line results (or --errors) of a task, one JSON object per line.')
    .option('--errors', 'the failed lines instead of the registered ones')
    .action(
      withConnection(async (conn, flags, taskId) => {
        const r = await call(conn, 'GET', `/thing-registration-tasks/${encodePath(taskId)}/reports`, {
          query: { reportType: flags.errors ? 'ERRORS' : 'RESULTS' },
        });
        for (const link of r.resourceLinks as string[])
          process.stdout.write(await (await fetch(link)).text());
      }),
    );

  // ---- traces --------------------------------------------------------------------------------------------
  provision
    .command('trace [attemptId]')
    .description(
      'Provisioning traces: every attempt (MQTT, RegisterThing, JITP, bulk) step by step, with the exact reason of a refusal. ' +
        'Without an id: the newest attempts.',
    )
    .option('--template <name>', 'only this template')
    .option('--thing <name>', 'only this thing')
    .option('--certificate <id>', 'only this certificate')
    .option('--rejected', 'only refused attempts')
    .option('--accepted', 'only accepted attempts')
    .option('--limit <n>', 'how many (default 20, at most 250)', '20')
    .option('--steps', 'print the steps of every listed attempt')
    .action(
      withConnection(async (conn, flags, attemptId) => {
        if (attemptId) {
          const r = await call(conn, 'GET', `/provisioning/traces/${encodePath(attemptId)}`);
          if (flags.json) return console.log(JSON.stringify(r.trace, null, 2));
          return printTrace(r.trace as Record<string, any>);
        }
        const limit = Number(flags.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 250)
          throw new CliError('--limit must be 1..250');
        const r = await call(conn, 'GET', '/provisioning/traces', {
          query: {
            templateName: flags.template,
            thingName: flags.thing,
            certificateId: flags.certificate,
            result: flags.rejected ? 'rejected' : flags.accepted ? 'accepted' : undefined,
            maxResults: limit,
          },
        });
        const traces = r.traces as Array<Record<string, any>>;
        if (flags.json) return console.log(JSON.stringify(traces, null, 2));
        if (flags.steps) {
          for (const t of traces) printTrace(t);
          return;
        }
        printTable(
          traces.map((t) => ({
            started: new Date(t.startedAt as number).toISOString(),
            flow: t.flow,
            template: t.templateName,
            result: t.result,
            reason: t.reason,
            thing: t.thingName,
            attempt: t.attemptId,
          })),
        );
        if (traces.some((t) => t.result === 'rejected'))
          console.log('see why: thingstead provision trace <attempt>');
      }),
    );

  program.addCommand(provision);
}
