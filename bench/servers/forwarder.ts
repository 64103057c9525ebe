/**
 * The load generator's ceiling: a trivial TCP forwarder that speaks just enough MQTT for the bench's
 * clients (CONNACK, SUBACK, PUBACK, PINGRESP) and copies every PUBLISH frame, byte for byte, to every
 * subscribed connection. No topic matching, no sessions, no queues: whatever rate the bench measures
 * through it is what the load generator and the loopback can carry on this machine.
 * Prints {"port":N} once listening.
 */
import { createServer, type Socket } from 'node:net';
import { FrameScanner } from '../lib/frames.js';

const subscribers = new Set<Socket>();

const server = createServer({ noDelay: true }, (socket) => {
  let acks: number[] = [];
  // Consecutive PUBLISH frames of the current chunk, forwarded as one slice.
  let runBuf: Buffer | null = null;
  let runStart = 0;
  let runEnd = 0;
  const flushRun = () => {
    if (runBuf && runEnd > runStart) {
      const slice = runBuf.subarray(runStart, runEnd);
      for (const s of subscribers) s.write(slice);
    }
    runBuf = null;
  };
  const scanner = new FrameScanner((buf, start, body, end) => {
    const type = buf[start]! >> 4;
    if (type === 3) {
      if ((buf[start]! >> 1) & 3) acks.push(buf.readUInt16BE(body + 2 + buf.readUInt16BE(body)));
      if (runBuf === buf && runEnd === start) runEnd = end;
      else {
        flushRun();
        runBuf = buf;
        runStart = start;
        runEnd = end;
      }
      return;
    }
    flushRun();
    if (type === 1) socket.write(Buffer.from([0x20, 2, 0, 0]));
    else if (type === 8) {
      subscribers.add(socket);
      socket.write(Buffer.from([0x90, 3, buf[body]!, buf[body + 1]!, buf[end - 1]! & 3]));
    } else if (type === 12) socket.write(Buffer.from([0xd0, 0]));
    else if (type === 14) socket.end();
  });
  socket.on('data', (chunk: Buffer) => {
    for (const s of subscribers) s.cork();
    scanner.push(chunk);
    flushRun();
    for (const s of subscribers) s.uncork();
    if (acks.length) {
      const out = Buffer.allocUnsafe(acks.length * 4);
      for (let i = 0; i < acks.length; i++) {
        out[i * 4] = 0x40;
        out[i * 4 + 1] = 2;
        out.writeUInt16BE(acks[i]!, i * 4 + 2);
      }
      acks = [];
      socket.write(out);
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => subscribers.delete(socket));
});
server.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1', backlog: 4096 }, () => {
  const addr = server.address();
  console.log(JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 }));
});
process.on('SIGTERM', () => process.exit(0));
