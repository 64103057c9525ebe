/**
 * Aedes in its own process behind a plain `net` server, as its README shows. Prints {"port":N} once
 * listening on 127.0.0.1 (port 0 = any free port, or argv[2]).
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

// concurrency: mqemitter's in-flight message cap (default 100). Under a burst the default queues messages and
// drains them recursively, which overflows the stack (RangeError in mqemitter); a high cap keeps Aedes up.
const broker = await Aedes.createBroker({ concurrency: 100_000 });
const server = createServer({ noDelay: true }, broker.handle);
server.listen({ port: Number(process.argv[2] ?? 0), host: '127.0.0.1', backlog: 4096 }, () => {
  const addr = server.address();
  console.log(JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 }));
});
process.on('SIGTERM', () => process.exit(0));
