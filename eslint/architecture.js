// Local lint rules that keep the architecture of CONVENTIONS.md true (issue 9):
// - `no-import-cycles`: no file under src/ may reach itself through value imports. `import type` and
//   `export type` are erased at compile time and do not count. The whole src/ import graph is read once per
//   lint run; the rule reports each import of the current file whose target sits in the same strongly
//   connected component (Tarjan), naming one cycle so the fix is obvious.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const IMPORT_RE = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;

/** Value-import edges of one file: resolved absolute paths of the .ts files it imports. */
function valueImports(file, text) {
  const out = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    if (m[2]) continue; // import type / export type
    const spec = m[3];
    const base = resolve(dirname(file), spec);
    const ts = base.replace(/\.js$/, '.ts');
    try {
      if (statSync(ts).isFile()) out.push(ts);
    } catch {
      // not a project .ts file (e.g. JSON): no edge
    }
  }
  return out;
}

function walk(dir, files = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, files);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts')) files.push(p);
  }
  return files;
}

let cache = null;

/** file -> component id, and component id -> one cycle path (for the message). */
function components(root) {
  if (cache && cache.root === root) return cache;
  const files = walk(join(root, 'src'));
  const edges = new Map(files.map((f) => [f, valueImports(f, readFileSync(f, 'utf8'))]));
  // Tarjan's algorithm, iterative (no recursion on deep graphs).
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const comp = new Map();
  let next = 0;
  let compId = 0;
  for (const start of files) {
    if (index.has(start)) continue;
    const work = [[start, 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const [v, i] = frame;
      const targets = edges.get(v) ?? [];
      if (i < targets.length) {
        frame[1]++;
        const w = targets[i];
        if (!edges.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(v)));
      }
      if (low.get(v) === index.get(v)) {
        const members = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          members.push(w);
        } while (w !== v);
        const id = compId++;
        for (const m of members) comp.set(m, { id, size: members.length });
      }
    }
  }
  cache = { root, comp, edges };
  return cache;
}

/** One cycle through `from` -> `to` inside their component, as relative paths. */
function cyclePath(c, root, from, to) {
  const id = c.comp.get(from).id;
  const prev = new Map([[to, null]]);
  const queue = [to];
  while (queue.length) {
    const v = queue.shift();
    if (v === from) break;
    for (const w of c.edges.get(v) ?? []) {
      if (prev.has(w) || c.comp.get(w)?.id !== id) continue;
      prev.set(w, v);
      queue.push(w);
    }
  }
  // prev leads from `from` back to `to`; the cycle is from -> to -> ... -> from.
  const back = [];
  for (let v = from; v !== null && v !== undefined; v = prev.get(v)) back.push(relative(root, v));
  return [relative(root, from), ...back.reverse()].join(' -> ');
}

export default {
  rules: {
    'no-import-cycles': {
      meta: {
        type: 'problem',
        schema: [],
        messages: { cycle: 'Import cycle: {{path}} (CONVENTIONS.md: no cycles, at any depth).' },
      },
      create(context) {
        const file = context.filename;
        const root = context.cwd;
        if (!file.startsWith(join(root, 'src'))) return {};
        const c = components(root);
        const mine = c.comp.get(file);
        if (!mine || mine.size < 2) return {};
        const check = (node) => {
          if (node.importKind === 'type' || node.exportKind === 'type' || !node.source) return;
          const spec = node.source.value;
          if (typeof spec !== 'string' || !spec.startsWith('.')) return;
          const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
          if (c.comp.get(target)?.id !== mine.id) return;
          context.report({ node, messageId: 'cycle', data: { path: cyclePath(c, root, file, target) } });
        };
        return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check };
      },
    },
  },
};
