import { Command } from 'commander';
import type { SignedFetchOptions } from '../api/index.js';
import {
  CliError,
  call,
  connectionOptions,
  printRecord,
  printTable,
  type CommandFlags,
  withConnection,
} from './connection.js';

/**
 * `thingstead certs list|describe|revoke|deactivate|activate`: device certificates over the AWS-compatible
 * API (ListCertificates, DescribeCertificate, UpdateCertificate). A status change reaches connected
 * devices as a change event: a revoked or deactivated certificate's MQTT connections are dropped before
 * the command returns (same process) or within a second (another platform on the same database).
 * Certificates are named by their 64-hex id, a unique prefix of it (at least 6 characters), or their ARN.
 */

const LIST_HINT = 'List the certificates with `thingstead certs list`.';

const out = (flags: CommandFlags, json: unknown, human: () => void) => {
  if (flags.json) console.log(JSON.stringify(json, null, 2));
  else human();
};

/** API dates arrive as epoch seconds (the AWS JSON protocol) or ISO strings. */
const date = (v: unknown) =>
  typeof v === 'number' ? new Date(v * 1000).toISOString() : (v as string | undefined);

/** Every certificate (ListCertificates pages by marker). */
export async function listCertificates(conn: SignedFetchOptions, max = 100_000): Promise<any[]> {
  const items: any[] = [];
  let marker: string | undefined;
  do {
    const page = await call(conn, 'GET', '/certificates', {
      query: { marker, pageSize: Math.min(250, max - items.length) },
    });
    items.push(...((page.certificates as any[]) ?? []));
    marker = page.nextMarker;
  } while (marker && items.length < max);
  return items;
}

/** A certificate id from an id, an ARN (…:cert/<id>) or a unique id prefix. */
export async function resolveCertificateId(conn: SignedFetchOptions, given: string): Promise<string> {
  const id = /:cert\/([a-fA-F0-9]{64})$/.exec(given)?.[1] ?? given;
  if (/^[a-fA-F0-9]{64}$/.test(id)) return id.toLowerCase();
  if (!/^[a-fA-F0-9]{6,63}$/.test(id))
    throw new CliError(
      `${given} is not a certificate id: expected 64 hex characters (or a unique prefix of at least 6, or the certificate ARN).\n${LIST_HINT}`,
    );
  const prefix = id.toLowerCase();
  const matches = (await listCertificates(conn))
    .map((c) => c.certificateId as string)
    .filter((c) => c.startsWith(prefix));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new CliError(`no certificate id starts with ${prefix}.\n${LIST_HINT}`);
  throw new CliError(
    `${prefix} matches ${matches.length} certificates (${matches.map((m) => m.slice(0, 12)).join(', ')}); give more characters.`,
  );
}

/** The API call, with a not-found error that says how to find the right id. */
async function certificateCall(
  conn: SignedFetchOptions,
  method: string,
  id: string,
  request: Parameters<typeof call>[3] = {},
): Promise<any> {
  try {
    return await call(conn, method, `/certificates/${id}`, request);
  } catch (err) {
    if (err instanceof CliError && err.message.startsWith('ResourceNotFoundException'))
      throw new CliError(`no certificate ${id} on this platform.\n${LIST_HINT}`);
    throw err;
  }
}

const STATUS_COMMANDS = [
  {
    name: 'revoke',
    status: 'REVOKED',
    done: 'revoked',
    description:
      'Revoke a certificate (UpdateCertificate newStatus REVOKED): its devices are disconnected now and ' +
      'refused from then on. Revocation is final for connecting: to re-enable a device, issue it a new ' +
      'certificate (`thingstead onboard`).',
  },
  {
    name: 'deactivate',
    status: 'INACTIVE',
    done: 'deactivated',
    description:
      'Deactivate a certificate (newStatus INACTIVE): its devices are disconnected and refused until ' +
      '`thingstead certs activate`.',
  },
  {
    name: 'activate',
    status: 'ACTIVE',
    done: 'activated',
    description: 'Activate a certificate (newStatus ACTIVE): its devices may connect again.',
  },
] as const;

export function registerCerts(program: Command): void {
  const certs = connectionOptions(
    new Command('certs').description(
      'Device certificates: list, describe, revoke, deactivate, activate. Name one by its id, a unique ' +
        'id prefix (6+ characters) or its ARN.',
    ),
  ).addHelpText(
    'after',
    `
Examples:
  thingstead certs list --status ACTIVE
  thingstead certs describe 3f9c2a            # a unique id prefix is enough
  thingstead certs revoke 3f9c2a              # the device is disconnected before this returns`,
  );
  certs
    .command('list')
    .description('List certificates (id, status, mode, creation date).')
    .option('--status <status>', 'only certificates with this status (ACTIVE, INACTIVE, REVOKED, ...)')
    .option('--max <n>', 'stop after this many certificates', '10000')
    .action(
      withConnection(async (conn, flags) => {
        let items = await listCertificates(conn, Number(flags.max));
        if (flags.status) {
          const want = String(flags.status).toUpperCase();
          items = items.filter((c) => c.status === want);
        }
        out(flags, { certificates: items }, () =>
          printTable(
            items.map((c) => ({
              id: c.certificateId,
              status: c.status,
              mode: c.certificateMode,
              created: date(c.creationDate),
            })),
          ),
        );
      }),
    );
  certs
    .command('describe <id>')
    .description('Show one certificate (status, validity, CA, PEM with --pem).')
    .option('--pem', 'print the certificate PEM too')
    .action(
      withConnection(async (conn, flags, given) => {
        const id = await resolveCertificateId(conn, given);
        const r = await certificateCall(conn, 'GET', id);
        const d = r.certificateDescription ?? {};
        out(flags, r, () => {
          const { certificatePem, validity, ...rest } = d;
          printRecord({
            ...rest,
            creationDate: date(d.creationDate),
            lastModifiedDate: date(d.lastModifiedDate),
            notBefore: date(validity?.notBefore),
            notAfter: date(validity?.notAfter),
          });
          if (flags.pem) console.log(String(certificatePem).trimEnd());
        });
      }),
    );
  for (const s of STATUS_COMMANDS)
    certs
      .command(`${s.name} <id>`)
      .description(s.description)
      .action(
        withConnection(async (conn, flags, given) => {
          const id = await resolveCertificateId(conn, given);
          await certificateCall(conn, 'PUT', id, { query: { newStatus: s.status } });
          out(flags, { certificateId: id, status: s.status }, () =>
            console.log(`${s.done} certificate ${id} (status ${s.status})`),
          );
        }),
      );
  program.addCommand(certs);
}
