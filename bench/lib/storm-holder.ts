/**
 * Child process for the connection-storm scenario: opens `count` MQTT 3.1.1 connections to
 * 127.0.0.1:`port`, each sending CONNECT then SUBSCRIBE to a filter of its own
 * (`storm/<prefix>-<i>/#`, distinct per client), `concurrency` handshakes at a time, and holds them
 * open until told to exit. Reports {subscribed, failed, done} over IPC every 100 ms and when done.
 * argv: port count clientPrefix concurrency
 */
import { connect, type Socket } from 'node:net';
import { CONNACK, FrameScanner, SUBACK, connectPacket, subscribePacket } from './frames.js';

const [portArg, countArg, prefix = 'storm', concurrencyArg = '500'] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const sockets: Socket[] = [];
let subscribed = 0;
let failed = 0;
let next = 0;
let inFlight = 0;
let finished = false;

function report() {
  process.send?.({ subscribed, failed, done: finished });
}

function openOne(i: number) {
  inFlight++;
  let settled = false;
  const id = `${prefix}-${i}`;
  const s = connect({ port, host: '127.0.0.1', noDelay: true });
  sockets.push(s);
  const settle = (ok: boolean) => {
    if (settled) return;
    settled = true;
    inFlight--;
    if (ok) subscribed++;
    else failed++;
    pump();
  };
  const scanner = new FrameScanner((buf, start, body) => {
    const type = buf[start]! >> 4;
    if (type === CONNACK) {
      if (buf[body + 1] !== 0) settle(false);
      else s.write(subscribePacket(`storm/${id}/#`, 0));
    } else if (type === SUBACK) settle(buf[body + 2]! < 0x80);
  });
  s.on('data', (d: Buffer) => scanner.push(d));
  s.on('error', () => settle(false));
  s.on('close', () => settle(false));
  s.write(connectPacket(id));
}

function pump() {
  while (inFlight < concurrency && next < count) openOne(next++);
  if (inFlight === 0 && next >= count && !finished) {
    finished = true;
    report();
  }
}

const progress = setInterval(report, 100);
process.on('message', (m) => {
  if (m === 'exit') {
    clearInterval(progress);
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
pump();
