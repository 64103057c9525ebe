import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import {
  ApiError,
  consoleGet,
  consolePost,
  onSessionExpired,
  probablySignedIn,
  setSession,
  type SessionInfo,
} from './api';
import { Overview } from './pages/overview';
import { Things } from './pages/things';
import { Thing } from './pages/thing';
import { Topics } from './pages/topics';
import { Telemetry } from './pages/telemetry';
import { Certificates } from './pages/certificates';
import { Policies } from './pages/policies';
import { Rules } from './pages/rules';
import { Jobs, Job } from './pages/jobs';
import { Provisioning } from './pages/provisioning';
import { SignIn } from './pages/signin';
import { ErrorBox, Loading } from './ui';
import './styles.css';

/** Hash routes (`#/things/t1`): the console's paths never collide with the API's. */
function useRoute(): string[] {
  // `#/things/t1?q=...`: the part after `?` is the page's own state (read by the page).
  const read = () =>
    (location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

const NAV: Array<[string, string]> = [
  ['overview', 'Overview'],
  ['things', 'Things'],
  ['topics', 'Topic viewer'],
  ['telemetry', 'Telemetry'],
  ['jobs', 'Jobs'],
  ['rules', 'Rules'],
  ['certificates', 'Certificates'],
  ['policies', 'Policies'],
  ['provisioning', 'Provisioning'],
];

function App() {
  // With a CSRF cookie the pages render at once (their API calls run beside the session lookup); the name
  // and role fill in when it answers, and a dead session sends the user to the sign-in form.
  const [session, setS] = useState<SessionInfo | null | undefined>(
    probablySignedIn() ? { accessKeyId: '', name: '…', role: 'admin', expiresAt: 0, csrf: '' } : undefined,
  );
  const [error, setError] = useState<unknown>(null);
  const route = useRoute();
  const apply = (s: SessionInfo | null) => {
    setSession(s);
    setS(s);
  };
  useEffect(() => {
    onSessionExpired(() => apply(null));
    consoleGet<{ session: SessionInfo }>('session').then(
      (r) => apply(r.session),
      (e: unknown) => {
        if (!(e instanceof ApiError && e.status === 401)) setError(e);
        apply(null);
      },
    );
  }, []);
  if (session === undefined) return <Loading />;
  if (session === null) return <SignIn onSignedIn={apply} error={error} />;
  const [page = 'overview', ...rest] = route;
  const signOut = () => {
    void consolePost('sign-out').finally(() => apply(null));
  };
  let body;
  switch (page) {
    case 'things':
      body = rest[0] ? <Thing name={rest[0]} session={session} /> : <Things />;
      break;
    case 'topics':
      body = <Topics session={session} />;
      break;
    case 'telemetry':
      body = <Telemetry />;
      break;
    case 'jobs':
      body = rest[0] ? <Job id={rest[0]} session={session} /> : <Jobs session={session} />;
      break;
    case 'rules':
      body = <Rules session={session} />;
      break;
    case 'certificates':
      body = <Certificates session={session} />;
      break;
    case 'policies':
      body = <Policies />;
      break;
    case 'provisioning':
      body = <Provisioning />;
      break;
    default:
      body = <Overview />;
  }
  return (
    <div class="layout">
      <nav class="side">
        <a class="brand" href="#/overview">
          Thingstead
        </a>
        {NAV.map(([id, label]) => (
          <a href={`#/${id}`} class={page === id ? 'active' : ''} data-nav={id}>
            {label}
          </a>
        ))}
        <div class="who" data-testid="who">
          <div>{session.name}</div>
          <div class={`role ${session.role}`}>{session.role === 'admin' ? 'admin' : 'read-only'}</div>
          <button class="link" onClick={signOut} data-testid="sign-out">
            Sign out
          </button>
        </div>
      </nav>
      <main>
        {session.role === 'read-only' && (
          <div class="banner">
            Signed in with a read-only key: you can look at everything and change nothing.
          </div>
        )}
        <ErrorBox error={error} onDismiss={() => setError(null)} />
        {body}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
