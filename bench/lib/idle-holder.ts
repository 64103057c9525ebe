/**
 * Child process that opens `count` MQTT connections (CONNECT, keepalive 0) to 127.0.0.1:`port` and
 * holds them open, idle, until told to exit. Several of these share the idle-connection test so no
 * process comes near the 20k open-file limit. Reports {connected, failed} over IPC.
 * argv: port count clientPrefix
 */
import { connect, type Socket } from 'node:net';
import { connectPacket } from './frames.js';

const [portArg, countArg, prefix = 'idle'] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const sockets: Socket[] = [];
let connected = 0;
let failed = 0;
let next = 0;
let inFlight = 0;
let exiting = false;
const CONCURRENCY = 200;

let finished = false;

function report() {
  process.send?.({ connected, failed, done: finished });
}

function openOne(i: number) {
  inFlight++;
  let acked = false;
  let ok = false;
  const s = connect({ port, host: '127.0.0.1' });
  sockets.push(s);
  const settle = (success: boolean) => {
    if (acked) return;
    acked = true;
    ok = success;
    inFlight--;
    if (ok) connected++;
    else failed++;
    pump();
  };
  s.once('data', (d: Buffer) => settle(d[0] === 0x20 && d[3] === 0));
  s.on('error', () => settle(false));
  s.on('close', () => {
    // Closed after a successful CONNACK: the broker dropped an idle connection.
    if (ok && !exiting) {
      ok = false;
      connected--;
    }
    settle(false);
  });
  s.write(connectPacket(`${prefix}-${i}`));
}

function pump() {
  while (inFlight < CONCURRENCY && next < count) openOne(next++);
  if (inFlight === 0 && next >= count && !finished) {
    finished = true;
    report();
  }
}

const progress = setInterval(() => report(), 500);
process.on('message', (m) => {
  if (m === 'exit') {
    exiting = true;
    clearInterval(progress);
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
pump();
