/**
 * Client ids are at most 128 bytes (AWS IoT Core's limit, reference §11; `limits.maxClientIdBytes`): a longer
 * one is refused with CONNACK 0x85 Client Identifier not valid (MQTT 5 §3.2.2.2) or return code 2 Identifier
 * rejected (MQTT 3.1.1 §3.2.2.3) [MQTT-3.1.3-9], and counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { loadConfig } from '../../src/config/index.js';
import { RC } from '../../src/mqtt/reason-codes.js';
import { RawClient, connect, end, metric } from './helpers.js';

let platform: TestPlatform;
beforeAll(async () => {
  platform = await startTestPlatform();
});
afterAll(async () => {
  await platform?.stop();
});

const refusedCount = () =>
  metric(platform, 'thingstead_mqtt_connects_refused_total', { reason: 'CLIENT_IDENTIFIER_NOT_VALID' });

describe('client id length (limits.maxClientIdBytes, default 128)', () => {
  it('accepts 128 bytes, counted in UTF-8 bytes', async () => {
    expect(loadConfig({ env: {} }).limits.maxClientIdBytes).toBe(128);
    const ascii = await connect(platform, { clientId: 'a'.repeat(128) });
    // 64 two-byte characters: 128 bytes.
    const utf8 = await connect(platform, { clientId: 'é'.repeat(64), protocolVersion: 4 });
    await end(ascii, utf8);
  });

  it('MQTT 5: 129 bytes gets CONNACK 0x85 with a reason string, and the connection closes', async () => {
    const before = await refusedCount();
    const raw = await RawClient.open(platform, 5);
    raw.send(
      { cmd: 'connect', protocolVersion: 5, clientId: 'é'.repeat(64) + 'a', clean: true, keepalive: 10 },
      5,
    );
    const c = (await raw.next('connack')) as { reasonCode: number; properties?: { reasonString?: string } };
    expect(c.reasonCode).toBe(RC.CLIENT_IDENTIFIER_NOT_VALID);
    expect(c.properties?.reasonString).toBe('client id longer than 128 bytes (limits.maxClientIdBytes)');
    await raw.waitClosed();
    expect(await refusedCount()).toBe(before + 1);
    expect(platform.broker.clients().some((x) => x.clientId.startsWith('éé'))).toBe(false);
  });

  it('MQTT 3.1.1: 129 bytes gets return code 2 (identifier rejected)', async () => {
    const before = await refusedCount();
    const raw = await RawClient.open(platform, 4);
    raw.send({ cmd: 'connect', protocolVersion: 4, clientId: 'b'.repeat(129), clean: true, keepalive: 10 });
    const c = (await raw.next('connack')) as { returnCode: number };
    expect(c.returnCode).toBe(2);
    await raw.waitClosed();
    expect(await refusedCount()).toBe(before + 1);
  });

  it('is configurable', async () => {
    const small = await startTestPlatform({ limits: { maxClientIdBytes: 23 } });
    try {
      const ok = await connect(small, { clientId: 'c'.repeat(23) });
      await end(ok);
      await expect(connect(small, { clientId: 'c'.repeat(24) })).rejects.toMatchObject({
        code: RC.CLIENT_IDENTIFIER_NOT_VALID,
      });
      // A server-assigned id (MQTT 5, empty client id) is never refused by the limit.
      const assigned = await connect(small, { clientId: '' });
      const assigned3 = await connect(small, { clientId: '', protocolVersion: 4, clean: true });
      await end(assigned, assigned3);
    } finally {
      await small.stop();
    }
    expect(() => loadConfig({ env: {}, overrides: { limits: { maxClientIdBytes: 22 } } })).toThrow(
      /limits\.maxClientIdBytes/,
    );
  });
});
