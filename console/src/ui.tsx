import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/** Shared building blocks: every page uses the same header, cards, tables, empty states and errors. */

export function Page(p: {
  title: string;
  subtitle?: string;
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <section class="page">
      <header class="page-head">
        <div>
          <h1>{p.title}</h1>
          {p.subtitle && <p class="muted">{p.subtitle}</p>}
        </div>
        <div class="actions">{p.actions}</div>
      </header>
      {p.children}
    </section>
  );
}

export function Card(p: {
  title?: string;
  extra?: ComponentChildren;
  children: ComponentChildren;
  class?: string;
}) {
  return (
    <div class={`card ${p.class ?? ''}`}>
      {(p.title || p.extra) && (
        <div class="card-head">
          <h2>{p.title}</h2>
          <div>{p.extra}</div>
        </div>
      )}
      {p.children}
    </div>
  );
}

export function Stat(p: {
  label: string;
  value: ComponentChildren;
  tone?: 'ok' | 'warn' | 'bad';
  testid?: string;
}) {
  return (
    <div class={`stat ${p.tone ?? ''}`} data-testid={p.testid}>
      <div class="stat-value">{p.value}</div>
      <div class="stat-label">{p.label}</div>
    </div>
  );
}

/** An empty state: what is missing and what to do next. */
export function Empty(p: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty" data-testid="empty">
      <strong>{p.title}</strong>
      {p.children && <div class="muted">{p.children}</div>}
    </div>
  );
}

/** An error as the API said it: exception name and message, with a hint for access denials. */
export function ErrorBox(p: { error: unknown; onDismiss?: () => void }) {
  if (!p.error) return null;
  const e = p.error;
  const type = e instanceof ApiError ? e.type : 'Error';
  const message = e instanceof Error ? e.message : JSON.stringify(e);
  const denied = e instanceof ApiError && e.status === 403;
  return (
    <div class="error" role="alert" data-testid="error">
      <strong>{type}</strong> {message}
      {denied && (
        <div class="muted">Your access key cannot make this change. Sign in with an admin key to do it.</div>
      )}
      {p.onDismiss && (
        <button class="link" onClick={p.onDismiss}>
          dismiss
        </button>
      )}
    </div>
  );
}

export const Loading = () => <div class="loading">Loading…</div>;

export function Dot(p: { on: boolean; label?: string }) {
  return (
    <span class={`dot ${p.on ? 'on' : 'off'}`} title={p.on ? 'connected' : 'disconnected'}>
      {p.label ?? (p.on ? 'connected' : 'disconnected')}
    </span>
  );
}

export function Badge(p: { children: ComponentChildren; tone?: string }) {
  return <span class={`badge ${p.tone ?? ''}`}>{p.children}</span>;
}

/** Run an async loader, re-run it when `deps` change; `reload` runs it again. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const seq = useRef(0);
  const run = useCallback(() => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => n === seq.current && setState({ data, loading: false }),
      (error: unknown) => n === seq.current && setState({ error, loading: false }),
    );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

/** Run `fn` every `ms` while mounted. */
export function useInterval(fn: () => void, ms: number | null) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const t = setInterval(() => ref.current(), ms);
    return () => clearInterval(t);
  }, [ms]);
}

export function Json(p: { value: unknown }) {
  return <pre class="json">{JSON.stringify(p.value, null, 2)}</pre>;
}

export function KeyValues(p: { rows: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="kv">
      {p.rows.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

export const number = (n: number) => n.toLocaleString('en-US');
