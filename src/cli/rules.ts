import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { encodePath } from '../api/index.js';
import {
  CliError,
  call,
  collect,
  connectionOptions,
  listAll,
  printRecord,
  printTable,
  type CommandFlags,
  withConnection,
} from './connection.js';

/**
 * `thingstead rules ...`: topic rules over the AWS-compatible API (the same calls as `aws iot
 * create-topic-rule` etc.), plus `rules test` (evaluate on a sample, nothing delivered), `rules metrics`
 * and `rules trace` (sampled live matches).
 */

type Flags = CommandFlags;

const epoch = (v: unknown) => (typeof v === 'number' ? new Date(v * 1000).toISOString() : v);

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The TopicRulePayload from --file, or from --sql and --action flags. */
function payloadFromFlags(flags: Flags): Record<string, unknown> {
  if (flags.file) {
    const body = parseJson(readFileSync(String(flags.file), 'utf8'), String(flags.file)) as Record<
      string,
      unknown
    >;
    // Accept the CLI-style wrapper too; the wire body is the bare payload.
    return (body.topicRulePayload as Record<string, unknown> | undefined) ?? body;
  }
  if (!flags.sql)
    throw new CliError('give --sql "SELECT ... FROM \'topic\'" (and --action JSON), or --file payload.json');
  return {
    sql: flags.sql,
    actions: ((flags.action as string[] | undefined) ?? []).map((a, i) => parseJson(a, `--action #${i + 1}`)),
    ...(flags.errorAction ? { errorAction: parseJson(String(flags.errorAction), '--error-action') } : {}),
    ...(flags.sqlVersion ? { awsIotSqlVersion: flags.sqlVersion } : {}),
    ...(flags.description ? { description: flags.description } : {}),
    ...(flags.disabled ? { ruleDisabled: true } : {}),
  };
}

function withPayloadOptions(cmd: Command): Command {
  return cmd
    .option(
      '--sql <statement>',
      'rule SQL, e.g. "SELECT temperature FROM \'dt/+/telemetry\' WHERE temperature > 50"',
    )
    .option(
      '--action <json>',
      'an action object, e.g. \'{"republish":{"topic":"alerts/${topic(2)}"}}\' (repeatable)',
      collect,
    )
    .option('--error-action <json>', 'the errorAction object')
    .option('--sql-version <v>', 'awsIotSqlVersion: 2015-10-08 (default) or 2016-03-23')
    .option('--description <text>', 'description')
    .option('--disabled', 'create the rule disabled')
    .option('--file <payload.json>', 'read the whole TopicRulePayload from a JSON file');
}

export function registerRules(program: Command): void {
  const rules = connectionOptions(
    new Command('rules').description('Manage topic rules (AWS IoT SQL) and inspect their delivery.'),
  );

  rules
    .command('list')
    .description('List rules, optionally only those whose FROM matches a topic, or disabled ones.')
    .option('--topic <topic>', 'only rules listening to this topic')
    .option('--disabled', 'only disabled rules')
    .option('--enabled', 'only enabled rules')
    .action(
      withConnection(async (conn, flags) => {
        const ruleDisabled = flags.disabled ? true : flags.enabled ? false : undefined;
        const items = await listAll(conn, '/rules', 'rules', { topic: flags.topic, ruleDisabled }, 10_000);
        if (flags.json) console.log(JSON.stringify(items, null, 2));
        else
          printTable(
            items.map((r) => ({ ...r, createdAt: epoch(r.createdAt) })),
            ['ruleName', 'topicPattern', 'ruleDisabled', 'createdAt'],
          );
      }),
    );

  rules
    .command('get <ruleName>')
    .description('Show a rule: SQL, version, actions, errorAction.')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'GET', `/rules/${encodePath(name)}`);
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        printRecord({ ruleArn: r.ruleArn, ...r.rule, createdAt: epoch(r.rule.createdAt) });
      }),
    );

  withPayloadOptions(
    rules.command('create <ruleName>').description('Create a rule (name: letters, digits, _).'),
  ).action(
    withConnection(async (conn, flags, name) => {
      await call(conn, 'POST', `/rules/${encodePath(name)}`, { body: payloadFromFlags(flags) });
      console.log(`created rule ${name}`);
    }),
  );

  withPayloadOptions(rules.command('replace <ruleName>').description("Replace a rule's payload.")).action(
    withConnection(async (conn, flags, name) => {
      await call(conn, 'PATCH', `/rules/${encodePath(name)}`, { body: payloadFromFlags(flags) });
      console.log(`replaced rule ${name}`);
    }),
  );

  for (const [verb, method, suffix] of [
    ['delete', 'DELETE', ''],
    ['enable', 'POST', '/enable'],
    ['disable', 'POST', '/disable'],
  ] as const) {
    rules
      .command(`${verb} <ruleName>`)
      .description(`${verb[0]!.toUpperCase()}${verb.slice(1)} a rule.`)
      .action(
        withConnection(async (conn, _flags, name) => {
          await call(conn, method, `/rules/${encodePath(name)}${suffix}`);
          console.log(`${verb}d rule ${name}`);
        }),
      );
  }

  rules
    .command('test <ruleName>')
    .description(
      'Evaluate a rule on a sample message and show what each action would receive (nothing is sent).',
    )
    .option('--payload <json|text>', 'the sample payload')
    .option('--payload-file <file>', 'read the sample payload from a file (bytes as is)')
    .option('--topic <topic>', 'the topic it arrived on (default: the FROM filter with wildcards filled)')
    .option('--client-id <id>', 'clientid() for the sample')
    .action(
      withConnection(async (conn, flags, name) => {
        const body: Record<string, unknown> = {};
        if (flags.payloadFile)
          body.payloadBase64 = readFileSync(String(flags.payloadFile)).toString('base64');
        else if (flags.payload !== undefined) body.payload = String(flags.payload);
        else throw new CliError('give --payload \'{"temperature": 21}\' or --payload-file <file>');
        if (flags.topic) body.topic = flags.topic;
        if (flags.clientId) body.clientId = flags.clientId;
        const r = await call(conn, 'POST', `/rules/${encodePath(name)}/test`, { body });
        if (flags.json) return console.log(JSON.stringify(r, null, 2));
        if (!r.matched) return console.log('no match: WHERE was not true, no action would run');
        console.log(`output: ${r.output ?? `(binary, base64) ${r.outputBase64}`}`);
        for (const [i, a] of (r.actions as any[]).entries()) {
          console.log(`\naction ${i + 1}: ${a.kind} -> ${a.resource}`);
          if (a.error) console.log(`  error: ${a.error}`);
          else console.log(JSON.stringify(a.request, null, 2).replace(/^/gm, '  '));
        }
      }),
    );

  rules
    .command('metrics <ruleName>')
    .description(
      'Per-rule counters: matched, actions ok/failed, queued to the outbox, drops by reason, latency.',
    )
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'GET', `/rules/${encodePath(name)}/metrics`);
        if (flags.json) return console.log(JSON.stringify(r.metrics, null, 2));
        const m = r.metrics;
        printRecord({
          matched: m.matched,
          actionOk: m.actionOk,
          actionFailed: m.actionFailed,
          queuedToOutbox: m.queued,
          outboxPending: m.outboxPending,
          dropped: Object.keys(m.dropped).length ? m.dropped : 'none',
          errorActions: m.errorActions,
          latencyP50Ms: m.latencyMs.p50,
          latencyP99Ms: m.latencyMs.p99,
        });
      }),
    );

  rules
    .command('trace <ruleName>')
    .description('Recent sampled matches: input, SELECT output and each action’s outcome.')
    .action(
      withConnection(async (conn, flags, name) => {
        const r = await call(conn, 'GET', `/rules/${encodePath(name)}/trace`);
        if (flags.json) return console.log(JSON.stringify(r.trace, null, 2));
        if (!r.trace.length) return console.log('(no matches sampled yet)');
        for (const t of r.trace as any[]) {
          console.log(`${new Date(t.at).toISOString()}  ${t.topic}  client=${t.clientId}`);
          console.log(`  in:  ${t.payload}`);
          console.log(`  out: ${t.output}`);
          for (const a of t.actions)
            console.log(
              `  ${a.kind} ${a.resource}: ${a.outcome}${a.ms !== undefined ? ` ${a.ms} ms` : ''}${a.error ? ` (${a.error})` : ''}`,
            );
        }
      }),
    );

  program.addCommand(rules);
}
