import { useEffect, useState } from 'preact/hooks';
import { aws, consoleGet } from '../api';
import { Badge, Card, Dot, Empty, ErrorBox, Page, number } from '../ui';

const PAGE_SIZE = 50;

/**
 * Fleet search with the AWS fleet-indexing query syntax (SearchIndex), paged on the server: one page of 50
 * per request, with nextToken; the count of matches comes from the console's count endpoint.
 */
export function Things() {
  const initial = new URLSearchParams(location.hash.split('?')[1] ?? '').get('q') ?? '';
  const [input, setInput] = useState(initial);
  const [query, setQuery] = useState(initial);
  const [tokens, setTokens] = useState<Array<string | undefined>>([undefined]);
  const [page, setPage] = useState<{ things: any[]; nextToken?: string } | null>(null);
  const [count, setCount] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const q = query.trim() || 'thingName:*';
  const token = tokens[tokens.length - 1];

  useEffect(() => {
    setBusy(true);
    setError(null);
    aws('iot', 'POST', '/indices/search', {
      body: { queryString: q, maxResults: PAGE_SIZE, ...(token ? { nextToken: token } : {}) },
    }).then(
      (r) => {
        setPage(r);
        setBusy(false);
        // For the bench and tests: the time (since navigation start) the rows are in the DOM.
        requestAnimationFrame(() => (document.body.dataset.thingsRendered = String(performance.now())));
      },
      (e: unknown) => {
        setError(e);
        setPage(null);
        setBusy(false);
      },
    );
  }, [q, token]);
  useEffect(() => {
    setCount(null);
    consoleGet<{ count: number }>('things/count', { q }).then(
      (r) => setCount(r.count),
      () => setCount(null),
    );
  }, [q]);

  const search = (e: Event) => {
    e.preventDefault();
    setTokens([undefined]);
    setQuery(input);
    history.replaceState(null, '', `#/things${input ? `?q=${encodeURIComponent(input)}` : ''}`);
  };
  const first = (tokens.length - 1) * PAGE_SIZE;
  return (
    <Page title="Things" subtitle="Search the fleet with the AWS fleet-indexing query syntax.">
      <form class="searchbar" onSubmit={search}>
        <input
          name="q"
          placeholder="thingName:sensor-* AND attributes.room:kitchen AND connectivity.connected:true"
          value={input}
          onInput={(e) => setInput(e.currentTarget.value)}
          data-testid="thing-search"
        />
        <button type="submit">Search</button>
      </form>
      <p class="muted small">
        Fields: thingName, thingTypeName, thingGroupNames, attributes.*, connectivity.connected,
        shadow.reported.*, shadow.desired.*; operators AND OR NOT, wildcards * ?, ranges [a TO b], comparisons
        &gt; &lt;.
      </p>
      <ErrorBox error={error} />
      <Card
        extra={
          <span class="muted" data-testid="things-range">
            {page && page.things.length > 0
              ? `${number(first + 1)}–${number(first + page.things.length)}${count !== null ? ` of ${number(count)}` : ''}`
              : ''}
            {busy ? ' · loading…' : ''}
          </span>
        }
      >
        {page && page.things.length === 0 ? (
          query ? (
            <Empty title="No thing matches this query">
              Try a wildcard, e.g. thingName:sensor-*, or clear the search.
            </Empty>
          ) : (
            <Empty title="No things yet">
              Create one with <code>npx thingstead onboard my-device</code> or{' '}
              <code>aws iot create-thing --thing-name my-device</code>.
            </Empty>
          )
        ) : (
          <table data-testid="things-table">
            <thead>
              <tr>
                <th>thing</th>
                <th>type</th>
                <th>groups</th>
                <th>attributes</th>
                <th>connection</th>
              </tr>
            </thead>
            <tbody>
              {(page?.things ?? []).map((t) => (
                <tr>
                  <td>
                    <a href={`#/things/${encodeURIComponent(t.thingName)}`}>{t.thingName}</a>
                  </td>
                  <td>{t.thingTypeName ?? <span class="muted">—</span>}</td>
                  <td>
                    {(t.thingGroupNames ?? []).map((g: string) => (
                      <Badge>{g}</Badge>
                    ))}
                  </td>
                  <td class="small">
                    {Object.entries(t.attributes ?? {})
                      .slice(0, 4)
                      .map(([k, v]) => `${k}=${String(v)}`)
                      .join(' · ')}
                  </td>
                  <td>
                    <Dot on={t.connectivity?.connected === true} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div class="pager">
          <button disabled={tokens.length <= 1 || busy} onClick={() => setTokens(tokens.slice(0, -1))}>
            ← Previous
          </button>
          <button
            disabled={!page?.nextToken || busy}
            onClick={() => setTokens([...tokens, page!.nextToken])}
            data-testid="next-page"
          >
            Next →
          </button>
        </div>
      </Card>
    </Page>
  );
}
