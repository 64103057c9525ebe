import { useState } from 'preact/hooks';
import { consolePost, type SessionInfo } from '../api';
import { ErrorBox } from '../ui';

export function SignIn(p: { onSignedIn: (s: SessionInfo) => void; error?: unknown }) {
  const [id, setId] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<unknown>(p.error ?? null);
  const [busy, setBusy] = useState(false);
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    consolePost<{ session: SessionInfo }>('sign-in', { accessKeyId: id, secretAccessKey: secret }).then(
      (r) => p.onSignedIn(r.session),
      (err: unknown) => {
        setError(err);
        setBusy(false);
      },
    );
  };
  return (
    <div class="signin">
      <form onSubmit={submit} data-testid="sign-in-form">
        <h1>Thingstead</h1>
        <p class="muted">
          Sign in with an access key. An admin key may change things; a read-only key sees everything and
          changes nothing.
        </p>
        <label>
          Access key id
          <input
            name="accessKeyId"
            autocomplete="username"
            value={id}
            onInput={(e) => setId(e.currentTarget.value)}
            required
          />
        </label>
        <label>
          Secret access key
          <input
            name="secretAccessKey"
            type="password"
            autocomplete="current-password"
            value={secret}
            onInput={(e) => setSecret(e.currentTarget.value)}
            required
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <ErrorBox error={error} />
        <p class="muted small">
          The admin key is in <code>data/credentials</code> (the <code>[default]</code> profile). Make a
          read-only key with <code>npx thingstead keys create viewer --role read-only</code>.
        </p>
      </form>
    </div>
  );
}
