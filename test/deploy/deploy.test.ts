/**
 * The deployment kit, checked without a container engine (issue 14): the Dockerfile by a parser and this
 * kit's rules, deploy/compose.yaml against the Compose Specification's JSON schema, deploy/k8s against
 * Kubernetes' JSON schemas, deploy/haproxy.cfg by `haproxy -c`, and the shared-secrets scripts by running
 * them and reading the result with the platform's own loaders. Every check also gets a broken input, to
 * show it can fail.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureServerTls, loadMasterKey } from '../../src/identity/index.js';
import {
  DEFAULT_PORTS,
  PORTS_ON_BY_DEFAULT,
  ROOT,
  SECRET_FILES,
  builtEntry,
  composeClusterProblems,
  composeNodes,
  composeSchemaProblems,
  dockerStages,
  dockerfileProblems,
  execForm,
  haproxyServers,
  kubernetesClusterProblems,
  kubernetesSchemaProblems,
  parseYamlDocuments,
  read,
  type Manifest,
} from './checks.js';

const CI = process.env.CI === 'true';
/** A command's path: on PATH, or in /usr/sbin, where Debian puts haproxy (not on every user's PATH). */
const which = (cmd: string) =>
  spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() ||
  (existsSync(`/usr/sbin/${cmd}`) ? `/usr/sbin/${cmd}` : '');
/** A tool the checks drive: under CI a missing one fails (CI installs it); elsewhere a visible SKIPPING line. */
function tool(cmd: string, skipped: string): string {
  const path = which(cmd);
  if (!path && CI) throw new Error(`${cmd} is required under CI (.ci/run installs it)`);
  if (!path) console.warn(`SKIPPING: ${cmd} is not installed; ${skipped} skipped`);
  return path;
}
const clone = <T>(v: T): T => structuredClone(v);

type Json = Record<string, any>;

describe('Dockerfile', () => {
  const text = read('Dockerfile');

  it('is multi-stage, non-root, health-checked, exposes the default ports and runs the built CLI', () => {
    expect(PORTS_ON_BY_DEFAULT).toEqual([DEFAULT_PORTS.http, DEFAULT_PORTS.mqttTls]);
    expect(dockerfileProblems(text)).toEqual([]);
  });

  it('finds what a broken Dockerfile gets wrong', () => {
    const broken = text
      .replace(/^USER .*$/m, 'USER node')
      .replace(/^EXPOSE .*$/m, 'EXPOSE 1883 8080')
      .replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT ["node", "dist/src/cli/main.js"]')
      .replace(/^HEALTHCHECK[^]*?^ {2}CMD .*$/m, '')
      .replace('THINGSTEAD_HTTP_HOST=0.0.0.0', 'THINGSTEAD_HTTP_HOSTS=0.0.0.0');
    const problems = dockerfileProblems(broken).join('\n');
    expect(problems).toMatch(/USER node is a name/);
    expect(problems).toMatch(/EXPOSE 1883 8080, the config's default ports are 8080 8883/);
    expect(problems).toMatch(/ENTRYPOINT runs dist\/src\/cli\/main.js/);
    expect(problems).toMatch(/no HEALTHCHECK/);
    expect(problems).toMatch(/THINGSTEAD_HTTP_HOSTS is not a setting/);
    expect(dockerfileProblems('FROM node:20-bookworm-slim\nCMD ["up"]\n')).toEqual([
      'Dockerfile: 1 stage(s), want a build stage and a runtime stage',
    ]);
  });

  it('runs an entry point that `npm run build` makes', (ctx) => {
    const entry = builtEntry();
    if (!existsSync(join(ROOT, 'dist')) && !CI) {
      console.warn(`SKIPPING: no dist/ (run npm run build); ${entry} not checked`);
      ctx.skip();
    }
    expect(existsSync(join(ROOT, entry)), `${entry} after npm run build`).toBe(true);
  });

  it('has a HEALTHCHECK that passes on 200 from /healthz and fails on 503 or no answer', async () => {
    const runtime = dockerStages(text).at(-1)!;
    const health = runtime.instructions.find((i) => i.getKeyword() === 'HEALTHCHECK')!;
    const cmd = /\bCMD\s+(\[.*\])\s*$/s.exec(health.getArgumentsContent()!.replace(/\\\n/g, ' '))?.[1];
    const argv = JSON.parse(cmd!) as string[];
    expect(argv[0]).toBe('node');
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(status).end(status === 200 ? 'ok' : 'degraded');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // Asynchronously: this process answers the check's request meanwhile.
    const check = () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, argv.slice(1), {
          env: { PATH: process.env.PATH, THINGSTEAD_HTTP_PORT: String(port) },
          stdio: 'ignore',
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
    try {
      expect(await check()).toBe(0);
      status = 503;
      expect(await check()).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await check()).toBe(1); // nothing listening
    expect(paths).toEqual(['/healthz', '/healthz']);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', 'dist', '.git', 'deploy/secrets']) expect(ignore).toContain(must);
    const sources = dockerStages(text)
      .flatMap((s) => s.instructions)
      .filter((i) => i.getKeyword() === 'COPY' && !i.getTextContent().includes('--from='))
      .flatMap((i) => (execForm(i) ?? i.getArguments().map((a) => a.getValue())).slice(0, -1));
    expect(sources).toContain('deploy/seed-data-dir.sh');
    for (const src of sources) {
      if (src === '.') continue;
      expect(existsSync(join(ROOT, src)), src).toBe(true);
      expect(
        ignore.some((pattern) => src === pattern || src.startsWith(`${pattern}/`)),
        `${src} ignored`,
      ).toBe(false);
    }
  });
});

describe('deploy/compose.yaml', () => {
  const [compose] = parseYamlDocuments(read('deploy/compose.yaml'), 'compose.yaml') as [Json];

  it('is valid under the Compose Specification schema', () => {
    expect(composeSchemaProblems(compose)).toEqual([]);
  });

  it('the schema refuses a misspelt or mistyped key', () => {
    const broken = clone(compose);
    broken.services['node-1'].helthcheck = { test: ['CMD', 'true'] };
    broken.services.postgres.restart = ['always'];
    const problems = composeSchemaProblems(broken).join('\n');
    expect(problems).toMatch(/services\/node-1: must NOT have additional properties/);
    expect(problems).toMatch(/services\/postgres\/restart: must be string/);
  });

  it('runs three nodes on PostgreSQL and NATS with shared secrets, own data, one first starter', () => {
    expect(composeNodes(compose).map(([name]) => name)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(composeClusterProblems(compose)).toEqual([]);
  });

  it('finds what a broken cluster gets wrong', () => {
    const broken = clone(compose);
    const node2 = broken.services['node-2'];
    node2.environment.THINGSTEAD_NODE_NAME = 'node-1';
    node2.environment.THINGSTEAD_NATS_SERVER = 'nats://nats:4222';
    node2.environment.THINGSTEAD_TLS_CERT_FILE = '/run/secrets/thingstead/server.pem';
    node2.volumes = node2.volumes.map((v: string) => v.replace('node-2-data', 'node-1-data'));
    delete broken.services['node-3'].depends_on['node-1'];
    const problems = composeClusterProblems(broken).join('\n');
    expect(problems).toMatch(/node name node-1 used twice/);
    expect(problems).toMatch(/THINGSTEAD_NATS_SERVER is not a setting/);
    expect(problems).toMatch(
      /THINGSTEAD_TLS_CERT_FILE is \/run\/secrets\/thingstead\/server.pem, want the seeded \/var\/lib\/thingstead\/tls\/server.pem/,
    );
    expect(problems).toMatch(/data volume node-1-data:\/var\/lib\/thingstead shared by two nodes/);
    expect(problems).toMatch(/2 nodes start first, want 1/);
  });

  it('HAProxy balances exactly the compose nodes, on their ports, checking /healthz on the HTTP port', () => {
    const cfg = read('deploy/haproxy.cfg');
    const servers = haproxyServers(cfg);
    const nodes = composeNodes(compose) as [string, Json][];
    const httpPort = Number(nodes[0]![1].environment.THINGSTEAD_HTTP_PORT ?? DEFAULT_PORTS.http);
    const tlsPort = Number(nodes[0]![1].environment.THINGSTEAD_MQTT_TLS_PORT ?? DEFAULT_PORTS.mqttTls);
    const names = nodes.map(([n]) => n);
    const mqtt = servers.filter((s) => s.backend === 'thingstead_mqtt');
    const http = servers.filter((s) => s.backend === 'thingstead_http');
    expect(mqtt.map((s) => s.host)).toEqual(names);
    expect(http.map((s) => s.host)).toEqual(names);
    for (const s of mqtt) expect([s.port, s.checkPort]).toEqual([tlsPort, httpPort]);
    for (const s of http) expect(s.port).toBe(httpPort);
    for (const backend of cfg.split(/^backend /m).slice(1)) {
      expect(backend).toMatch(/^\s+option httpchk$/m);
      expect(backend).toMatch(/^\s+http-check send meth GET uri \/healthz$/m);
      expect(backend).toMatch(/^\s+http-check expect status 200$/m);
    }
    expect(cfg).toMatch(new RegExp(`^\\s+bind :${tlsPort}$`, 'm'));
    const lb = compose.services.haproxy;
    expect(lb.volumes).toContain('./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    expect(lb.ports.map((p: string) => p.split(':').at(-1))).toEqual(
      expect.arrayContaining([String(tlsPort), String(httpPort)]),
    );
  });
});

describe('deploy/haproxy.cfg', () => {
  const haproxy = tool('haproxy', '`haproxy -c -f deploy/haproxy.cfg` is');

  it.skipIf(!haproxy)('passes `haproxy -c` with no warning but the unresolvable compose host names', () => {
    const r = spawnSync(haproxy, ['-c', '-f', join(ROOT, 'deploy/haproxy.cfg')], { encoding: 'utf8' });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    const warnings = out
      .split('\n')
      .filter((l) => /\[(WARNING|ALERT)\]/.test(l) && !/could not resolve address 'node-\d'/.test(l));
    expect(warnings).toEqual([]);
  });

  it.skipIf(!haproxy)('`haproxy -c` refuses a broken config', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-haproxy-'));
    try {
      const file = join(dir, 'haproxy.cfg');
      const broken = read('deploy/haproxy.cfg').replace('balance leastconn', 'balance fewestconn');
      execFileSync('sh', ['-c', 'cat > "$1"', 'sh', file], { input: broken });
      const r = spawnSync(haproxy, ['-c', '-f', file], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/\[ALERT\].*haproxy\.cfg:\d+\] : balance only supports/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/k8s', () => {
  const dir = 'deploy/k8s';
  const files = readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.yaml'));
  const kustomization = parseYamlDocuments(
    read(`${dir}/kustomization.yaml`),
    'kustomization.yaml',
  )[0] as Json;
  const manifests: Manifest[] = files
    .filter((f) => f !== 'kustomization.yaml')
    .flatMap((file) =>
      parseYamlDocuments(read(`${dir}/${file}`), file).map((doc) => ({ file, doc: doc as Json })),
    );

  it('kustomization.yaml lists every manifest', () => {
    expect([...(kustomization.resources as string[])].sort()).toEqual(
      files.filter((f) => f !== 'kustomization.yaml').sort(),
    );
    expect(manifests.map((m) => m.doc.kind).sort()).toEqual(
      [
        'ConfigMap',
        'Namespace',
        'PodDisruptionBudget',
        'Service',
        'Service',
        'Service',
        'StatefulSet',
      ].sort(),
    );
  });

  it('every manifest is valid under the Kubernetes 1.27 JSON schema of its kind', async () => {
    expect(await kubernetesSchemaProblems(manifests)).toEqual([]);
  });

  it('the schemas refuse wrong types and unknown kinds', async () => {
    const set = clone<{ file: string; doc: Json }>(manifests.find((m) => m.doc.kind === 'StatefulSet')!);
    set.doc.spec.replicas = 'three';
    set.doc.spec.template.spec.containers[0].ports[0].containerPort = '8080/tcp';
    const unknown: Manifest = {
      file: 'x.yaml',
      doc: { apiVersion: 'apps/v9', kind: 'StatefulSet', metadata: { name: 'x' } },
    };
    const problems = (await kubernetesSchemaProblems([set, unknown])).join('\n');
    expect(problems).toMatch(/replicas/);
    expect(problems).toMatch(/containerPort/);
    expect(problems).toMatch(/no schema for apiVersion apps\/v9/);
  });

  it('three non-root nodes with /healthz probes, the default ports, shared secrets and a read-only root', () => {
    expect(kubernetesClusterProblems(manifests)).toEqual([]);
  });

  it('finds what a broken deployment gets wrong', () => {
    const broken = clone<{ file: string; doc: Json }[]>(manifests);
    const set = broken.find((m) => m.doc.kind === 'StatefulSet')!.doc;
    const c = set.spec.template.spec.containers[0];
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    c.livenessProbe.httpGet.path = '/';
    c.ports[1].containerPort = 1883;
    c.securityContext.readOnlyRootFilesystem = false;
    delete c.resources.limits.memory;
    c.volumeMounts.push({ name: 'tmp', mountPath: '/app/cache' });
    c.volumeMounts.push({ name: 'secrets', mountPath: '/etc/thingstead/secrets', readOnly: true });
    const cm = broken.find((m) => m.doc.kind === 'ConfigMap')!.doc;
    cm.data.THINGSTEAD_NATS_SERVERS = cm.data.THINGSTEAD_NATS_URL;
    delete cm.data.THINGSTEAD_NATS_URL;
    broken.find((m) => m.doc.kind === 'PodDisruptionBudget')!.doc.spec.selector.matchLabels = {
      app: 'other',
    };
    const problems = kubernetesClusterProblems(broken).join('\n');
    expect(problems).toMatch(/container thingstead: unknown field readinesProbe/);
    expect(problems).toMatch(/readinessProbe is not GET \/healthz/);
    expect(problems).toMatch(/livenessProbe is not GET \/healthz/);
    expect(problems).toMatch(/port mqtts is 1883, the node listens on 8883/);
    expect(problems).toMatch(/container thingstead: root filesystem is not read-only/);
    expect(problems).toMatch(/no resources.limits.memory/);
    expect(problems).toMatch(/writable mount at \/app\/cache/);
    expect(problems).toMatch(/the node mounts the Secret secrets/);
    expect(problems).toMatch(/THINGSTEAD_NATS_SERVERS is not a setting/);
    expect(problems).toMatch(/THINGSTEAD_NATS_URL unset/);
    expect(problems).toMatch(/no PodDisruptionBudget selects the pods/);
  });
});

describe('shared secrets (deploy/secrets.sh, deploy/seed-data-dir.sh)', () => {
  const openssl = tool('openssl', 'the shared-secrets scripts are');
  const work = mkdtempSync(join(tmpdir(), 'ts-secrets-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const secrets = join(work, 'secrets');
  const data = join(work, 'data');
  const sh = (script: string, ...args: string[]) =>
    execFileSync('bash', [join(ROOT, script), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });

  it.skipIf(!openssl)(
    'a seeded data directory is what a node reads: the same CA, CA key, master key',
    async () => {
      sh('deploy/secrets.sh', secrets, 'iot.example.com', '10.1.2.3');
      sh('deploy/seed-data-dir.sh', secrets, data);
      expect(readdirSync(secrets).sort()).toEqual([...SECRET_FILES].sort());
      const file = (name: string) => readFileSync(join(secrets, name), 'utf8');
      const server = new X509Certificate(file('server.pem'));
      expect(server.checkIssued(new X509Certificate(file('ca.pem')))).toBe(true);
      expect(server.verify(new X509Certificate(file('ca.pem')).publicKey)).toBe(true);
      expect(server.subjectAltName).toMatch(/DNS:iot\.example\.com/);
      expect(server.subjectAltName).toMatch(/IP Address:10\.1\.2\.3/);
      // As the manifests run a node: everything from the seeded data directory.
      const tls = await ensureServerTls({
        dataDir: data,
        hostname: 'node-1',
        certFile: join(data, 'tls', 'server.pem'),
        keyFile: join(data, 'tls', 'server.key'),
        caFile: null,
      });
      expect(tls.caPem).toBe(file('ca.pem'));
      expect(tls.caKeyPem).toBe(file('ca.key'));
      expect(tls.certPem).toBe(file('server.pem'));
      expect(tls.keyPem).toBe(file('server.key'));
      expect(loadMasterKey(data).toString('hex')).toBe(file('master.key').trim());
      expect(readFileSync(join(data, 'ota-url.key'), 'utf8')).toBe(file('ota-url.key'));
    },
  );

  it.skipIf(!openssl)('a second run keeps the CA and master key and renews the server certificate', () => {
    const before = ['ca.pem', 'ca.key', 'master.key', 'server.pem'].map((f) =>
      readFileSync(join(secrets, f), 'utf8'),
    );
    sh('deploy/secrets.sh', secrets, 'iot.example.com');
    const after = ['ca.pem', 'ca.key', 'master.key', 'server.pem'].map((f) =>
      readFileSync(join(secrets, f), 'utf8'),
    );
    expect(after.slice(0, 3)).toEqual(before.slice(0, 3));
    expect(after[3]).not.toBe(before[3]);
  });

  it.skipIf(!openssl)('seeding refuses an incomplete secrets directory, naming the missing file', () => {
    unlinkSync(join(secrets, 'master.key'));
    const r = spawnSync('sh', [join(ROOT, 'deploy/seed-data-dir.sh'), secrets, join(work, 'other')], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/master\.key is missing/);
  });
});
