/**
 * The connection log (src/mqtt/connection-log.ts): one info line per connect (client id, principal,
 * protocol version, transport, remote address), disconnect (reason, duration) and refused CONNECT (reason
 * code and reason), as Mosquitto logs them; budgeted per second with a summary line.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/index.js';
import { ConnectionLog } from '../../src/mqtt/connection-log.js';
import { RC } from '../../src/mqtt/reason-codes.js';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { RawClient, connect, uniqueId, waitFor } from './helpers.js';

type Line = Record<string, unknown> & { msg: string; level: number };

function capture(level = 'info') {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { lines, logger: createLogger(level, stream) };
}

describe('connection log lines', () => {
  let platform: TestPlatform;
  const { lines, logger } = capture();
  beforeAll(async () => {
    platform = await startTestPlatform(
      { limits: { connectsPerClientIdPerSecond: 1, connectBurstPerClientId: 1 } },
      { logger },
    );
  });
  afterAll(async () => {
    await platform?.stop();
  });
  const find = (msg: string, clientId: string) => lines.find((l) => l.msg === msg && l.clientId === clientId);

  it('connect and disconnect: client id, principal, protocol version, transport, remote; reason and duration (info)', async () => {
    const clientId = uniqueId('log');
    const c = await connect(platform, { clientId, protocolVersion: 5 });
    const on = await waitFor(() => find('mqtt client connected', clientId), 2000, 'the connect line');
    expect(on).toMatchObject({
      level: 30,
      event: 'connect',
      principal: 'anonymous',
      protocolVersion: '5.0',
      transport: 'tcp',
    });
    expect(on.remote).toMatch(/^(127\.0\.0\.1|::ffff:127\.0\.0\.1):\d+$/);
    await new Promise((r) => setTimeout(r, 50));
    await c.endAsync(); // a DISCONNECT
    const off = await waitFor(() => find('mqtt client disconnected', clientId), 2000, 'the disconnect line');
    expect(off).toMatchObject({ level: 30, event: 'disconnect', reason: 'client_disconnect' });
    expect(off.durationMs as number).toBeGreaterThanOrEqual(40);
  });

  it('a refused CONNECT: reason code, its name and the reason (info)', async () => {
    const clientId = uniqueId('log');
    for (let i = 0; i < 2; i++) {
      const raw = await RawClient.open(platform, 5);
      raw.send({ cmd: 'connect', protocolVersion: 5, clientId, clean: true, keepalive: 10 }, 5);
      await raw.next('connack');
      raw.destroy();
    }
    const refused = await waitFor(() => find('mqtt client refused', clientId), 2000, 'the refused line');
    expect(refused).toMatchObject({
      level: 30,
      event: 'refused',
      reasonCode: RC.CONNECTION_RATE_EXCEEDED,
      reasonName: 'CONNECTION_RATE_EXCEEDED',
      protocolVersion: '5.0',
    });
    expect(String(refused.reason)).toMatch(/connectsPerClientIdPerSecond/);
  });
});

describe('connection log budget', () => {
  it('at most `budget` lines a second, then one summary line with what was left out', () => {
    const { lines, logger } = capture();
    const log = new ConnectionLog(logger, 3);
    const conn = {
      clientId: 'c',
      principal: { kind: 'anonymous', id: 'anonymous' },
      version: 4,
      info: { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 1 },
      keepAlive: 0,
      connectedAt: 0,
      closeReason: 'client_disconnect',
    } as unknown as Parameters<ConnectionLog['connected']>[0];
    const t = 1_000_000;
    for (let i = 0; i < 5; i++) log.connected(conn, t + i);
    for (let i = 0; i < 4; i++) log.disconnected(conn, t + 10 + i);
    log.refused(conn, RC.NOT_AUTHORIZED, 'no', t + 20);
    expect(lines.filter((l) => l.event === 'connect')).toHaveLength(3);
    expect(lines.filter((l) => l.event === 'summary')).toHaveLength(0);
    log.roll(t + 1000);
    const summary = lines.filter((l) => l.event === 'summary');
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ level: 30, suppressed: 7, connected: 2, disconnected: 4, refused: 1 });
    // A new second has a new budget; a quiet second writes no summary.
    log.refused(conn, RC.NOT_AUTHORIZED, 'no', t + 1001);
    log.roll(t + 2100);
    expect(lines.filter((l) => l.event === 'refused')).toHaveLength(1);
    expect(lines.filter((l) => l.event === 'summary')).toHaveLength(1);
    // Nothing is built below info.
    const quiet = capture('warn');
    new ConnectionLog(quiet.logger, 3).connected(conn);
    expect(quiet.lines).toEqual([]);
  });
});
