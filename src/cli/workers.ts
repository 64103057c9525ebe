/**
 * `thingstead up --workers N`: N broker processes on this machine sharing the listening ports (node:cluster
 * hands each accepted connection to one worker). Every worker is a full cluster node (src/cluster) on the
 * shared PostgreSQL and NATS, so a message published to one reaches subscribers on the others.
 *
 * The primary holds the data-directory lock, starts worker 1 alone (it creates the CA, certificates and
 * admin credentials on a first start), then the others; prints the banner once; restarts a worker that
 * dies (its sessions are adopted by the others meanwhile, see src/cluster/node.ts) with a backoff; and
 * on SIGINT/SIGTERM stops every worker gracefully (each hands its clients over and writes their sessions).
 */
import cluster, { type Worker } from 'node:cluster';

/** What a worker tells the primary. */
export type WorkerMessage =
  { readonly type: 'ready'; readonly banner: string } | { readonly type: 'failed'; readonly message: string };

export function isWorkerProcess(): boolean {
  return cluster.isWorker;
}

/** In a worker: tell the primary it is up (with the banner to print) or that it could not start. */
export function reportToPrimary(message: WorkerMessage): void {
  process.send?.(message);
}

/**
 * In the primary: run `count` workers until a signal. Resolves never; exits the process when stopped.
 * `onStopped` releases the data-directory lock.
 */
export function runWorkers(count: number, onStopped: () => void): void {
  let stopping = false;
  const alive = new Set<Worker>();
  const restarts = new Map<number, number>();

  const fork = (index: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      alive.add(worker);
      let ready = false;
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          ready = true;
          resolve(m.banner);
        } else reject(new Error(m.message));
      });
      worker.on('exit', (code, signal) => {
        alive.delete(worker);
        if (stopping) {
          if (alive.size === 0) {
            onStopped();
            process.exit(0);
          }
          return;
        }
        if (!ready)
          return reject(new Error(`worker ${index} exited (${signal ?? code}) before it was ready`));
        // A worker that dies is restarted; its sessions are adopted by the other workers meanwhile.
        const n = (restarts.get(index) ?? 0) + 1;
        restarts.set(index, n);
        const delay = Math.min(30_000, 500 * 2 ** Math.min(n, 6));
        console.error(
          `thingstead: worker ${index} (pid ${worker.process.pid}) exited (${signal ?? `code ${code}`}); restarting it in ${delay} ms`,
        );
        setTimeout(() => {
          if (!stopping) fork(index).catch((err: Error) => console.error(`thingstead: ${err.message}`));
        }, delay).unref();
      });
    });

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`thingstead: ${signal}: stopping ${alive.size} workers (each hands its clients over)`);
    if (alive.size === 0) {
      onStopped();
      process.exit(0);
    }
    for (const w of alive) w.process.kill('SIGTERM');
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));

  void (async () => {
    try {
      const banner = await fork(1);
      const others = await Promise.all(Array.from({ length: count - 1 }, (_, i) => fork(i + 2)));
      void others;
      console.error(
        `${banner}\n\n  Workers           ${count} processes sharing these ports (cluster mode over NATS)`,
      );
    } catch (err) {
      console.error(`thingstead: ${(err as Error).message}; stopping`);
      stop('startup failure');
    }
  })();
}
