import { describe, expect, test } from 'vitest';
import {
  applyUpdate,
  AWS_LIMITS,
  deltaOf,
  deltaResponse,
  emptyDocument,
  getResponse,
  parseSimple,
  parseUpdate,
  ShadowError,
  stateBytes,
  updateAcceptedResponse,
  type ShadowDocument,
  type UpdateRequest,
} from './document.js';

/** Apply a list of updates from an empty document, version 1, 2, ... at second 1000 + version. */
function build(...updates: UpdateRequest[]): ShadowDocument {
  let doc = emptyDocument(1);
  updates.forEach((u, i) => (doc = applyUpdate(doc, u, i + 1, 1000 + i + 1)));
  return doc;
}

const rejected = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ShadowError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a ShadowError');
};

describe('parseUpdate', () => {
  test('nesting: six levels inside desired are allowed, seven are refused with AWS text', () => {
    const six = { state: { desired: { a: { b: { c: { d: { e: { f: 1 } } } } } } } };
    expect(parseUpdate(JSON.stringify(six), AWS_LIMITS).desired).toEqual(six.state.desired);
    const seven = { state: { reported: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } } };
    expect(rejected(() => parseUpdate(JSON.stringify(seven), AWS_LIMITS))).toEqual({
      code: 400,
      message: 'JSON contains too many levels of nesting; maximum is 6',
    });
  });

  test('invalid UTF-8 is 415, deep garbage is Invalid JSON without recursion', () => {
    expect(rejected(() => parseUpdate(Buffer.from([0x7b, 0xff, 0x7d]), AWS_LIMITS)).code).toBe(415);
    expect(rejected(() => parseUpdate('['.repeat(10_000), AWS_LIMITS))).toEqual({
      code: 400,
      message: 'Invalid JSON',
    });
    expect(rejected(() => parseUpdate('[]', AWS_LIMITS)).message).toBe('Invalid JSON');
  });

  test('clientToken is limited to 64 bytes (multi-byte characters count as bytes)', () => {
    expect(
      parseUpdate(JSON.stringify({ state: {}, clientToken: 'é'.repeat(32) }), AWS_LIMITS).clientToken,
    ).toHaveLength(32);
    expect(
      rejected(() => parseUpdate(JSON.stringify({ state: {}, clientToken: 'é'.repeat(33) }), AWS_LIMITS))
        .message,
    ).toBe('Invalid clientToken');
  });

  test('get/delete: empty payload, token, sinceVersion; a bad sinceVersion is Invalid version', () => {
    expect(parseSimple('')).toEqual({});
    expect(parseSimple('{"clientToken":"t","sinceVersion":3}')).toEqual({
      clientToken: 't',
      sinceVersion: 3,
    });
    expect(rejected(() => parseSimple('{"sinceVersion":-1}')).message).toBe('Invalid version');
  });
});

describe('applyUpdate', () => {
  test('merges recursively, null removes, arrays replace, emptied objects disappear', () => {
    const doc = build(
      { desired: { a: { b: 1, c: [1, 2] }, d: 'x' } },
      { desired: { a: { c: [3] }, d: null } },
      { desired: { a: { b: null } } },
    );
    expect(doc.state).toEqual({ desired: { a: { c: [3] } } });
    const again = applyUpdate(doc, { desired: { a: { c: null } } }, 4, 2000);
    expect(again.state).toEqual({});
    expect(again.metadata).toEqual({});
    expect(doc.state.desired).toEqual({ a: { c: [3] } }); // the input is not mutated
  });

  test('a scalar may become an object and back; metadata follows the shape', () => {
    const doc = build({ reported: { x: 1 } }, { reported: { x: { y: 2 } } }, { reported: { x: 'z' } });
    expect(doc.state.reported).toEqual({ x: 'z' });
    const g = getResponse(doc, 3, 5000, {});
    expect(g['metadata']).toEqual({ reported: { x: { timestamp: 1003 } } });
  });

  test('the state size counts desired and reported only', () => {
    const doc = build({ desired: { s: 'x'.repeat(100) } });
    expect(stateBytes(doc)).toBe(JSON.stringify({ desired: { s: 'x'.repeat(100) } }).length);
  });
});

describe('delta', () => {
  test('desired leaves missing or different in reported, full paths, arrays whole, reported-only never', () => {
    const doc = build({
      desired: { a: { b: 1, c: 2 }, list: [1, 2], same: true, only: 'd' },
      reported: { a: { b: 1, c: 3 }, list: [1, 2, 3], same: true, extra: 9 },
    });
    expect(deltaOf(doc)).toEqual({ a: { c: 2 }, list: [1, 2], only: 'd' });
    const d = deltaResponse(doc, 1, 1001, 'tok')!;
    expect(d['metadata']).toEqual({
      a: { c: { timestamp: 1001 } },
      list: { timestamp: 1001 },
      only: { timestamp: 1001 },
    });
    expect(d['clientToken']).toBe('tok');
  });

  test('objects compare by content, not key order; no delta means no delta document', () => {
    const doc = build({ desired: { o: { x: 1, y: 2 } }, reported: { o: { y: 2, x: 1 } } });
    expect(deltaOf(doc)).toBeUndefined();
    expect(deltaResponse(doc, 1, 1, undefined)).toBeUndefined();
  });
});

describe('responses', () => {
  test('update accepted echoes the fields sent, nulls included, with matching metadata', () => {
    const r = updateAcceptedResponse(
      { desired: { a: { b: null, c: 1 } }, reported: null, clientToken: 't' },
      7,
      99,
    );
    expect(r).toEqual({
      state: { desired: { a: { b: null, c: 1 } }, reported: null },
      metadata: {
        desired: { a: { b: { timestamp: 99 }, c: { timestamp: 99 } } },
        reported: { timestamp: 99 },
      },
      version: 7,
      timestamp: 99,
      clientToken: 't',
    });
  });

  test('per-leaf versions never show in AWS-shaped metadata', () => {
    const doc = build({ desired: { a: 1 } });
    expect(JSON.stringify(getResponse(doc, 1, 1, {})['metadata'])).not.toContain('version');
    expect(getResponse(doc, 1, 1, {})['metadata']).toEqual({ desired: { a: { timestamp: 1001 } } });
  });
});

describe('get sinceVersion (extension)', () => {
  const apply = (held: Record<string, unknown>, patch: Record<string, unknown>) => {
    // What a device does with an incremental answer: apply it like an update document.
    let doc = emptyDocument(1);
    doc = applyUpdate(doc, held, 1, 1);
    return applyUpdate(doc, patch, 2, 2).state;
  };

  test('the copy held at version N plus the answer equals the current document', () => {
    const updates: UpdateRequest[] = [
      { desired: { a: 1, b: { c: 1, d: 1 } }, reported: { r: [1] } },
      { desired: { b: { c: 2 } } },
      { desired: { a: null }, reported: { r: [2], s: 's' } },
      { desired: { b: { d: null, e: { f: 1 } } } },
      { reported: null },
    ];
    for (let held = 1; held <= updates.length; held++) {
      const then = build(...updates.slice(0, held));
      const now = build(...updates);
      const answer = getResponse(now, updates.length, 1, { sinceVersion: held });
      expect(answer['sinceVersion'], `held ${held}`).toBe(held);
      const { delta: _delta, ...patch } = answer['state'] as Record<string, unknown>;
      expect(apply(then.state as Record<string, unknown>, patch), `held ${held}`).toEqual(now.state);
    }
  });

  test('too old (tombstones dropped) or before a re-creation: the whole document, without sinceVersion', () => {
    const many: UpdateRequest[] = [];
    for (let i = 0; i < 70; i++) many.push({ desired: { [`k${i}`]: i } }, { desired: { [`k${i}`]: null } });
    const doc = build(...many);
    expect(doc.removed!.length).toBe(64);
    expect(getResponse(doc, many.length, 1, { sinceVersion: 2 })['sinceVersion']).toBeUndefined();
    expect(getResponse(doc, many.length, 1, { sinceVersion: many.length - 2 })['sinceVersion']).toBe(
      many.length - 2,
    );
    const recreated = applyUpdate(emptyDocument(10), { reported: { a: 1 } }, 10, 1);
    expect(getResponse(recreated, 10, 1, { sinceVersion: 5 })['sinceVersion']).toBeUndefined();
  });
});
