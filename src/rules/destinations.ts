/**
 * Topic rule destinations (AWS IoT Developer Guide "HTTP action destinations"; routes and shapes from the
 * @aws-sdk/client-iot model): an HTTP URL the rules engine may send to once its owner proved they control
 * it.
 *
 * Life of a destination: CreateTopicRuleDestination stores it IN_PROGRESS and POSTs a confirmation message
 * to its confirmationUrl: `{"arn", "confirmationToken", "enableUrl", "messageType": "DestinationConfirmation"}`.
 * ConfirmTopicRuleDestination with that token (or a GET of the enableUrl, which carries it) makes it
 * ENABLED. A confirmation POST that fails leaves it in ERROR with the reason. UpdateTopicRuleDestination
 * sets ENABLED (from DISABLED), DISABLED (from ENABLED) or IN_PROGRESS (from any status: a new token and
 * a new confirmation message; the old token stops working).
 *
 * The http action's gate (`refusal`, on the delivery path, sync, from memory): the destination whose
 * confirmationUrl is the longest prefix of the URL decides; a URL it covers is sent to only while it is
 * ENABLED. A URL no destination covers is sent to unless `requireHttpDestinations` (config
 * `rules.requireHttpDestinations`, default off, so rules made before destinations existed keep working).
 * Thingstead does not create destinations by itself when a rule names a new URL (AWS does).
 *
 * Contract: every committed write updates this process's cache and then publishes a `ruleDestination`
 * change event (awaited, so the API answers after local subscribers ran); other processes' events re-read
 * the destination they name, and `resync` re-reads them all.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { E } from '../errors/index.js';
import type { ChangeChannel } from '../events/index.js';
import type { Logger } from '../observability/index.js';
import type { Database } from '../store/index.js';
import { DestinationStore, type DestinationRecord, type DestinationStatus } from './destinations-store.js';

export type { DestinationStatus } from './destinations-store.js';

export interface DestinationsOptions {
  readonly db: Database;
  readonly region: string;
  readonly accountId: string;
  readonly logger: Logger;
  readonly events?: ChangeChannel;
  /** Refuse http actions to URLs no ENABLED destination covers (config `rules.requireHttpDestinations`). */
  readonly requireHttpDestinations?: boolean;
  /** Timeout of the confirmation POST (default 10 s). */
  readonly confirmationTimeoutMs?: number;
}

/** The wire shape of TopicRuleDestination (timestamps as Dates: the API writes epoch seconds). */
export interface TopicRuleDestinationView {
  readonly arn: string;
  readonly status: DestinationStatus;
  readonly statusReason?: string;
  readonly createdAt: Date;
  readonly lastUpdatedAt: Date;
  readonly httpUrlProperties: { readonly confirmationUrl: string };
}

const view = (d: DestinationRecord): TopicRuleDestinationView => ({
  arn: d.arn,
  status: d.status,
  ...(d.statusReason !== null ? { statusReason: d.statusReason } : {}),
  createdAt: new Date(d.createdAt),
  lastUpdatedAt: new Date(d.updatedAt),
  httpUrlProperties: { confirmationUrl: d.confirmationUrl },
});

const summary = (d: DestinationRecord) => {
  const { httpUrlProperties, ...rest } = view(d);
  return { ...rest, httpUrlSummary: httpUrlProperties };
};

/** The statuses UpdateTopicRuleDestination may move to from each status (AWS's rules, see top). */
function allowed(from: DestinationStatus, to: string): boolean {
  if (to === 'IN_PROGRESS') return true;
  if (to === 'ENABLED') return from === 'DISABLED' || from === 'ENABLED';
  if (to === 'DISABLED') return from === 'ENABLED' || from === 'DISABLED';
  return false;
}

export class TopicRuleDestinations {
  private readonly cache = new Map<string, DestinationRecord>();
  private readonly sending = new Set<Promise<void>>();
  private unsubscribe: (() => void) | null = null;

  private constructor(
    private readonly o: DestinationsOptions,
    private readonly store: DestinationStore,
  ) {}

  /** Open the store, load every destination and follow other processes' changes. */
  static async open(options: DestinationsOptions): Promise<TopicRuleDestinations> {
    const d = new TopicRuleDestinations(options, await DestinationStore.open(options.db));
    await d.reload();
    d.unsubscribe =
      options.events?.subscribe(['ruleDestination'], (e, origin) => {
        if (origin !== 'remote') return undefined;
        return e.kind === 'ruleDestination' ? d.reloadOne(e.arn) : d.reload();
      }) ?? null;
    return d;
  }

  private async reload(): Promise<void> {
    const rows = await this.store.list();
    this.cache.clear();
    for (const r of rows) this.cache.set(r.arn, r);
  }

  private async reloadOne(arn: string): Promise<void> {
    const r = await this.store.get(arn);
    if (r) this.cache.set(arn, r);
    else this.cache.delete(arn);
  }

  private async changed(d: DestinationRecord | { arn: string; deleted: true }): Promise<void> {
    if ('deleted' in d) this.cache.delete(d.arn);
    else this.cache.set(d.arn, d);
    await this.o.events?.publish({ kind: 'ruleDestination', arn: d.arn });
  }

  private async mustGet(arn: string): Promise<DestinationRecord> {
    const d = await this.store.get(arn);
    if (!d) throw E.DestinationNotFound({ arn });
    return d;
  }

  /** Does a destination with this ARN exist (tags)? */
  async exists(arn: string): Promise<boolean> {
    return (await this.store.get(arn)) !== undefined;
  }

  /**
   * CreateTopicRuleDestination: stored IN_PROGRESS, then the confirmation message is sent (not awaited).
   * `apiBase` is the URL this API was reached at, for the message's enableUrl.
   */
  async create(confirmationUrl: string, apiBase: string): Promise<TopicRuleDestinationView> {
    let u: URL;
    try {
      u = new URL(confirmationUrl);
    } catch {
      throw E.DestinationUrl({ url: confirmationUrl });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw E.DestinationUrl({ url: confirmationUrl });
    const now = Date.now();
    const d: DestinationRecord = {
      arn: `arn:aws:iot:${this.o.region}:${this.o.accountId}:ruledestination/http/${randomUUID()}`,
      confirmationUrl,
      status: 'IN_PROGRESS',
      statusReason: null,
      token: randomBytes(32).toString('hex'),
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.store.insert(d))) throw E.DestinationAlreadyExists({ confirmationUrl });
    await this.changed(d);
    this.sendConfirmation(d, apiBase);
    return view(d);
  }

  async get(arn: string): Promise<TopicRuleDestinationView> {
    return view(await this.mustGet(arn));
  }

  /** ListTopicRuleDestinations: ARN order, keyset token (base64url of the last ARN). */
  async list(input: { maxResults?: number; nextToken?: string }) {
    const limit = input.maxResults ?? 100;
    let after = '';
    if (input.nextToken) {
      after = Buffer.from(input.nextToken, 'base64url').toString('utf8');
      if (!after.startsWith('arn:')) throw E.NextTokenInvalid({ token: input.nextToken.slice(0, 64) });
    }
    const rows = (await this.store.list()).filter((d) => d.arn > after);
    const page = rows.slice(0, limit);
    return {
      destinationSummaries: page.map(summary),
      ...(rows.length > limit
        ? { nextToken: Buffer.from(page[page.length - 1]!.arn).toString('base64url') }
        : {}),
    };
  }

  /** UpdateTopicRuleDestination: IN_PROGRESS sends a new confirmation (new token); see `allowed`. */
  async update(arn: string, status: string, apiBase: string): Promise<void> {
    const d = await this.mustGet(arn);
    if (!allowed(d.status, status)) throw E.DestinationStatusChange({ from: d.status, to: status });
    if (status === d.status && status !== 'IN_PROGRESS') return;
    const next: DestinationRecord = {
      ...d,
      status: status as DestinationStatus,
      statusReason: null,
      token: status === 'IN_PROGRESS' ? randomBytes(32).toString('hex') : d.token,
      updatedAt: Math.max(Date.now(), d.updatedAt + 1),
    };
    if (!(await this.store.update(next, d))) throw E.DestinationConflict({ arn });
    await this.changed(next);
    if (status === 'IN_PROGRESS') this.sendConfirmation(next, apiBase);
  }

  async delete(arn: string): Promise<void> {
    await this.mustGet(arn);
    if (await this.store.delete(arn)) await this.changed({ arn, deleted: true });
  }

  /**
   * ConfirmTopicRuleDestination (and the enableUrl): the destination waiting for this token becomes
   * ENABLED. Confirming one that is already confirmed changes nothing.
   */
  async confirm(token: string): Promise<void> {
    const d = await this.store.byToken(token);
    if (!d) throw E.DestinationTokenInvalid();
    if (d.status !== 'IN_PROGRESS' && d.status !== 'ERROR') return;
    const next: DestinationRecord = {
      ...d,
      status: 'ENABLED',
      statusReason: null,
      updatedAt: Math.max(Date.now(), d.updatedAt + 1),
    };
    if (!(await this.store.update(next, d))) throw E.DestinationConflict({ arn: d.arn });
    await this.changed(next);
  }

  /**
   * The http action's gate. Hot path (delivery): sync, from memory. Returns why `url` may not be sent to,
   * or null when it may.
   */
  refusal(url: string): string | null {
    let best: DestinationRecord | undefined;
    for (const d of this.cache.values())
      if (
        url.startsWith(d.confirmationUrl) &&
        (!best || d.confirmationUrl.length > best.confirmationUrl.length)
      )
        best = d;
    if (best)
      return best.status === 'ENABLED'
        ? null
        : E.HttpDestinationNotEnabled.describe({
            url,
            arn: best.arn,
            confirmationUrl: best.confirmationUrl,
            status: best.status,
          }).message;
    return this.o.requireHttpDestinations ? E.HttpDestinationRequired.describe({ url }).message : null;
  }

  /** POST the confirmation message; a failure leaves the destination in ERROR (if still waiting for it). */
  private sendConfirmation(d: DestinationRecord, apiBase: string): void {
    const token = d.token!;
    const body = JSON.stringify({
      arn: d.arn,
      confirmationToken: token,
      enableUrl: `${apiBase}/confirmdestination/${token}`,
      messageType: 'DestinationConfirmation',
    });
    const p = (async () => {
      let reason: string | null = null;
      try {
        const res = await fetch(d.confirmationUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.o.confirmationTimeoutMs ?? 10_000),
          redirect: 'manual',
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status < 200 || res.status >= 300)
          reason = `the confirmation URL answered HTTP ${res.status}`;
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        reason = `the confirmation request failed: ${cause ?? (err as Error).message}`;
      }
      if (reason === null) return;
      this.o.logger.warn(
        { arn: d.arn, url: d.confirmationUrl, reason },
        'topic rule destination not confirmed',
      );
      const current = await this.store.get(d.arn);
      if (!current || current.token !== token || current.status !== 'IN_PROGRESS') return;
      const next: DestinationRecord = {
        ...current,
        status: 'ERROR',
        statusReason: reason,
        updatedAt: Math.max(Date.now(), current.updatedAt + 1),
      };
      if (await this.store.update(next, current)) await this.changed(next);
    })()
      .catch((err: unknown) => this.o.logger.warn({ err, arn: d.arn }, 'destination confirmation failed'))
      .finally(() => this.sending.delete(p));
    this.sending.add(p);
  }

  /** Resolves when every confirmation message sent so far was answered (or failed). */
  async settled(): Promise<void> {
    while (this.sending.size) await Promise.all([...this.sending]);
  }

  /** Stop following other processes' changes; waits for confirmation messages in flight. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.settled();
  }
}
