/**
 * Group commit: many concurrent single-row writes (a journal row per registration) become one statement.
 *
 * Contract: `add(item)` resolves only once a write containing `item` has finished (so a caller may rely on
 * its row being stored exactly as if it had written it alone), and rejects with that write's error. Calls
 * made in the same event-loop turn, or while the previous write is in flight, are written together, at most
 * `max` per statement; one write is in flight at a time. When a grouped write fails, each of its items is
 * retried on its own, so one bad row fails only its own caller.
 * @example const insert = groupCommit((rows) => store.insertRows(rows), 100); await insert(row);
 */
export function groupCommit<T>(
  write: (items: readonly T[]) => Promise<void>,
  max: number,
): (item: T) => Promise<void> {
  type Waiter = { item: T; resolve: () => void; reject: (err: unknown) => void };
  let queue: Waiter[] = [];
  let busy = false;

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.slice(0, max);
      queue = queue.slice(batch.length);
      try {
        await write(batch.map((w) => w.item));
        for (const w of batch) w.resolve();
      } catch (err) {
        if (batch.length === 1) batch[0]!.reject(err);
        else for (const w of batch) await write([w.item]).then(w.resolve, (e: unknown) => w.reject(e));
      }
    }
    busy = false;
  }

  return (item) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      if (busy) return;
      busy = true;
      // The next turn, so that the lines that reach this point in the same turn share the write.
      setImmediate(() => void drain());
    });
}

const lists = new Map<string, string>();

/** `($1, $2), ($3, $4)`: the placeholders of a multi-row VALUES list of `rows` rows of `width` columns (memoized). */
export function valuesList(rows: number, width: number): string {
  const key = `${rows}x${width}`;
  let text = lists.get(key);
  if (text === undefined) {
    const out: string[] = [];
    for (let r = 0; r < rows; r++)
      out.push(`(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`);
    text = out.join(', ');
    lists.set(key, text);
  }
  return text;
}
