import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { parseProfile, ProfileError, runFleet, type Percentiles, type SimDevice } from '../sim/index.js';
import { CliError, resolveConnection, type ConnectionFlags } from './connection.js';
import { onboard } from './onboard.js';

/**
 * `thingstead sim --things N --profile <file>`: onboard N things through the API (`thingstead onboard`'s
 * steps: thing, key made here, certificate, starter policies), or reuse the ones already in --fleet-dir,
 * then run them for --duration seconds (src/sim) and report what they did and the latencies they saw.
 */
export function registerSim(program: Command): void {
  program
    .command('sim')
    .description(
      'Run a simulated fleet: onboard N things, publish telemetry by pattern, follow shadows, run jobs; report latencies.',
    )
    .requiredOption('--things <n>', 'how many things')
    .requiredOption(
      '--profile <file>',
      'simulation profile (JSON): telemetry patterns, shadow, jobs; see docs/sim.md',
    )
    .option('--duration <s>', 'seconds to run after the fleet is connected', '60')
    .option('--prefix <name>', 'thing names are <prefix>0000, <prefix>0001, ...', 'sim-')
    .option(
      '--fleet-dir <dir>',
      'certificates and keys of the simulated things (reused across runs)',
      './sim-fleet',
    )
    .option('--endpoint <url>', 'MQTT endpoint mqtts://host:port (default: from <data dir>/endpoints.json)')
    .option('--concurrency <n>', 'connections opened at once', '50')
    // The shared connection flags, except that --profile names the simulation profile here.
    .option(
      '--endpoint-url <url>',
      'API base URL (default: from <data dir>/endpoints.json; env AWS_ENDPOINT_URL_IOT)',
    )
    .option(
      '--credentials-profile <name>',
      'profile in the credentials file (env AWS_PROFILE, default "default")',
    )
    .option('--region <region>', 'signing region (env AWS_REGION, default from config)')
    .option(
      '--data-dir <dir>',
      'Thingstead data directory holding endpoints.json and credentials (default ./data)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (flags: ConnectionFlags & Record<string, any>) => {
      const n = Number(flags.things);
      if (!Number.isInteger(n) || n < 1 || n > 100_000)
        throw new CliError('--things must be a whole number in 1..100000');
      const duration = Number(flags.duration);
      if (!Number.isFinite(duration) || duration < 1)
        throw new CliError('--duration must be at least 1 second');
      const profileFile = resolve(String(flags.profile));
      if (!existsSync(profileFile))
        throw new CliError(`profile ${profileFile} does not exist (see docs/sim.md for one)`);
      let profile;
      try {
        profile = parseProfile(readFileSync(profileFile, 'utf8'), String(flags.profile));
      } catch (err) {
        if (err instanceof ProfileError) throw new CliError(err.message);
        throw err;
      }
      const conn = resolveConnection({ ...flags, profile: flags.credentialsProfile as string | undefined });
      let endpoint = flags.endpoint as string | undefined;
      let caPem: string | undefined;
      if (!endpoint) {
        const dataDir = resolve(flags.dataDir ?? './data');
        const file = join(dataDir, 'endpoints.json');
        if (!existsSync(file))
          throw new CliError(`${file} does not exist: pass --endpoint mqtts://host:port`);
        const e = JSON.parse(readFileSync(file, 'utf8')) as { mqtts?: string; caFile?: string };
        if (!e.mqtts) throw new CliError('the platform has no MQTT TLS port on: pass --endpoint');
        endpoint = e.mqtts;
        if (e.caFile && existsSync(e.caFile)) caPem = readFileSync(e.caFile, 'utf8');
      }
      const url = new URL(endpoint);
      const fleetDir = resolve(String(flags.fleetDir));
      const names = Array.from(
        { length: n },
        (_, i) => `${String(flags.prefix)}${String(i).padStart(4, '0')}`,
      );
      const missing = names.filter((t) => !existsSync(join(fleetDir, `${t}.cert.pem`)));
      if (missing.length) {
        console.log(
          `onboarding ${missing.length} things into ${fleetDir} (${n - missing.length} already there)...`,
        );
        let done = 0;
        let next = 0;
        const t0 = Date.now();
        // The first one alone: it creates the shared starter policies the others then attach.
        await onboard(conn, {
          thingName: missing[next++]!,
          outDir: fleetDir,
          host: url.hostname,
          port: Number(url.port),
          ...(caPem ? { caPem } : {}),
        });
        done++;
        await Promise.all(
          Array.from({ length: Math.min(8, missing.length) }, async () => {
            while (next < missing.length) {
              const thingName = missing[next++]!;
              await onboard(conn, {
                thingName,
                outDir: fleetDir,
                host: url.hostname,
                port: Number(url.port),
                ...(caPem ? { caPem } : {}),
              });
              if (++done % 100 === 0 || done === missing.length)
                console.log(`  onboarded ${done}/${missing.length}`);
            }
          }),
        );
        console.log(`onboarded ${missing.length} things in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
      caPem ??= readFileSync(join(fleetDir, 'ca.pem'), 'utf8');
      const devices: SimDevice[] = names.map((thingName) => ({
        thingName,
        cert: readFileSync(join(fleetDir, `${thingName}.cert.pem`), 'utf8'),
        key: readFileSync(join(fleetDir, `${thingName}.private.key`), 'utf8'),
      }));
      console.log(`running ${n} things against ${endpoint} for ${duration} s`);
      const report = await runFleet({
        mqttUrl: endpoint,
        ca: caPem,
        devices,
        profile,
        durationS: duration,
        connectConcurrency: Number(flags.concurrency),
        onProgress: (p) =>
          console.log(
            `[${String(p.elapsedS).padStart(4)} s] connected ${p.connected}/${n}  telemetry ${p.published} sent ${p.acked} acked  shadow ${p.shadowUpdates}  jobs ${p.jobsDone}`,
          ),
      });
      if (flags.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const pct = (p: Percentiles) =>
        p.count ? `p50 ${p.p50} ms  p95 ${p.p95} ms  p99 ${p.p99} ms  max ${p.max} ms` : '-';
      console.log(`\nsimulated ${report.things} things for ${report.durationS} s`);
      console.log(
        `  connected         ${report.connected}/${report.things}${report.connectFailures ? `  (${report.connectFailures} failed; first: ${report.firstConnectError})` : ''}`,
      );
      console.log(`  connect           ${pct(report.connectMs)}`);
      console.log(
        `  telemetry         ${report.telemetry.published} sent, ${report.telemetry.acked} acknowledged, ${report.telemetry.failed} failed (${report.telemetry.perSecond}/s)`,
      );
      console.log(`  publish -> PUBACK ${pct(report.telemetry.ackMs)}`);
      console.log(
        `  shadow            ${report.shadow.updates} updates, ${report.shadow.accepted} accepted, ${report.shadow.rejected} rejected, ${report.shadow.deltasFollowed} deltas followed`,
      );
      console.log(`  update -> accepted ${pct(report.shadow.acceptedMs)}`);
      console.log(
        `  jobs              ${report.jobs.started} started, ${report.jobs.succeeded} succeeded, ${report.jobs.failed} failed`,
      );
      console.log(`  notify -> done    ${pct(report.jobs.notifyToDoneMs)}`);
      if (report.connectFailures > 0) process.exitCode = 1;
    });
}
