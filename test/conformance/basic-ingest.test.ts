/**
 * Basic Ingest (AWS IoT Developer Guide, "Reducing messaging costs with Basic Ingest"; reference §11): a
 * PUBLISH to `$aws/rules/{rule}/...` goes to that rule only, never to subscribers, not even of
 * `$aws/rules/#` or the exact topic, and is never retained.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { collect, connect, end, waitFor } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
  // The rule republishes what Basic Ingest hands it, so the test can see the rule ran.
  await platform.rules.createRule('ingest_rule', {
    sql: "SELECT *, topic() AS t FROM 'ingest/unused'",
    actions: [{ republish: { topic: 'ingest/out', qos: 1 } }],
  });
});
afterAll(async () => {
  await platform?.stop();
});

describe('Basic Ingest', () => {
  it('reaches the rule, and no subscriber of $aws/rules/# or of the topic itself', async () => {
    const spy = await connect(platform);
    const exact = await connect(platform);
    const out = await connect(platform);
    const spied = collect(spy);
    const exactly = collect(exact);
    const republished = collect(out);
    await spy.subscribeAsync('$aws/rules/#', { qos: 1 });
    await exact.subscribeAsync('$aws/rules/ingest_rule/dev/1', { qos: 1 });
    await out.subscribeAsync('ingest/out', { qos: 1 });
    const pub = await connect(platform);
    await pub.publishAsync('$aws/rules/ingest_rule/dev/1', '{"v":1}', { qos: 1 });
    await pub.publishAsync('$aws/rules/ingest_rule/dev/1', '{"v":2}', { qos: 0 });

    const got = await waitFor(() => (republished.length >= 2 ? republished : null), 5000, 'the rule');
    // topic() is the topic without the Basic Ingest prefix.
    expect(got.map((m) => JSON.parse(m.payload))).toEqual([
      { v: 1, t: 'dev/1' },
      { v: 2, t: 'dev/1' },
    ]);
    // Anything routed to subscribers would have arrived before the rule's republish (same turn).
    await pub.publishAsync('ingest/marker', 'm', { qos: 1 });
    expect(spied).toEqual([]);
    expect(exactly).toEqual([]);
    await end(spy, exact, out, pub);
  });

  it('is not retained, so a later subscriber gets nothing either', async () => {
    const pub = await connect(platform);
    await pub.publishAsync('$aws/rules/ingest_rule/keep', 'r', { qos: 1, retain: true });
    expect(platform.broker.retained('$aws/rules/ingest_rule/keep')).toBeUndefined();
    const late = await connect(platform);
    const got = collect(late);
    await late.subscribeAsync('$aws/rules/ingest_rule/keep', { qos: 1 });
    await late.publishAsync('ingest/marker', 'm', { qos: 1 });
    expect(got).toEqual([]);
    // Ordinary `$aws/...`-free topics are still retained and delivered (the check is the prefix only).
    await pub.publishAsync('rules/ingest_rule/keep', 'r', { qos: 1, retain: true });
    await late.subscribeAsync('rules/ingest_rule/keep', { qos: 1 });
    await waitFor(() => got.find((m) => m.topic === 'rules/ingest_rule/keep'));
    await end(pub, late);
  });
});
