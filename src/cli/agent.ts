import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { startAgent } from '../agent/index.js';
import { loadConfig } from '../config/index.js';
import { CliError, collect } from './connection.js';

/**
 * `thingstead agent`: the reference device agent (src/agent) as a command. It reads a device folder made by
 * `thingstead onboard` (`<thing>.cert.pem`, `<thing>.private.key`, `ca.pem`) unless given files, finds the
 * MQTT TLS endpoint in `<data dir>/endpoints.json` unless given `--endpoint`, and runs until stopped.
 */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('Run the reference device agent: firmware jobs (download, verify, install, report).')
    .requiredOption('--thing <name>', 'the thing (and MQTT client id) this device is')
    .option('--device-dir <dir>', 'folder written by `thingstead onboard` (default ./<thing>)')
    .option('--cert <file>', 'device certificate (default <device dir>/<thing>.cert.pem)')
    .option('--key <file>', 'device private key (default <device dir>/<thing>.private.key)')
    .option('--ca <file>', 'platform CA (default <device dir>/ca.pem)')
    .option('--endpoint <url>', 'mqtts://host:port (default: from <data dir>/endpoints.json)')
    .option('--data-dir <dir>', 'Thingstead data directory holding endpoints.json (default ./data)')
    .requiredOption(
      '--trusted-key <file>',
      'a public key (PEM) whose firmware signatures to accept (repeatable)',
      collect,
    )
    .requiredOption(
      '--install <command>',
      'install hook, run with THINGSTEAD_OTA_FILE etc.; exit 0 = installed',
    )
    .option('--rollback <command>', 'rollback hook, run when the install hook fails')
    .option('--work-dir <dir>', 'downloads and state.json (default <device dir>/ota)')
    .option('--current-version <v>', 'installed version when state.json has none', '0.0.0')
    .option('--prefer-stream', 'fetch over MQTT streams when a job offers both')
    .option('--format <json|cbor>', 'MQTT stream format', 'json')
    .option('--block-size <bytes>', 'MQTT stream block size', '65536')
    .action(async (flags: Record<string, any>) => {
      const thing = String(flags.thing);
      const dir = resolve(flags.deviceDir ? String(flags.deviceDir) : thing);
      const read = (file: string, what: string) => {
        if (!existsSync(file)) throw new CliError(`${what} ${file} does not exist`);
        return readFileSync(file, 'utf8');
      };
      let endpoint = flags.endpoint as string | undefined;
      if (!endpoint) {
        const dataDir = resolve(
          loadConfig({ env: process.env, overrides: flags.dataDir ? { dataDir: flags.dataDir } : {} })
            .dataDir,
        );
        const file = join(dataDir, 'endpoints.json');
        endpoint = (JSON.parse(read(file, 'endpoints file')) as { mqtts?: string }).mqtts ?? undefined;
        if (!endpoint) throw new CliError('the platform has no MQTT TLS port on: pass --endpoint');
      }
      const agent = await startAgent({
        mqttUrl: endpoint,
        thingName: thing,
        cert: read(flags.cert ?? join(dir, `${thing}.cert.pem`), 'certificate'),
        key: read(flags.key ?? join(dir, `${thing}.private.key`), 'private key'),
        ca: read(flags.ca ?? join(dir, 'ca.pem'), 'CA file'),
        trustedKeys: (flags.trustedKey as string[]).map((f) => read(f, 'trusted key')),
        workDir: resolve(flags.workDir ? String(flags.workDir) : join(dir, 'ota')),
        installCommand: String(flags.install),
        ...(flags.rollback ? { rollbackCommand: String(flags.rollback) } : {}),
        initialVersion: String(flags.currentVersion),
        preferStream: flags.preferStream === true,
        streamFormat: flags.format === 'cbor' ? 'cbor' : 'json',
        blockSize: Number(flags.blockSize),
        log: (event, fields) =>
          console.log(`${new Date().toISOString()}  ${event}${fields ? `  ${JSON.stringify(fields)}` : ''}`),
      });
      console.log(`agent for ${thing} connected to ${endpoint}; installed version ${agent.version()}`);
      await new Promise<void>((done) => {
        const stop = () => void agent.close().then(done);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
