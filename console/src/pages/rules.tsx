import { useState } from 'preact/hooks';
import { aws, seg, type SessionInfo } from '../api';
import { Badge, Card, Empty, ErrorBox, Json, Page, useAsync, useInterval } from '../ui';

/** Topic rules with their metrics, a test against a sample message, and the recent trace. */
export function Rules(p: { session: SessionInfo }) {
  const list = useAsync(() => aws('iot', 'GET', '/rules'), []);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const toggle = (name: string, disabled: boolean) => {
    setError(null);
    aws('iot', 'POST', `/rules/${seg(name)}/${disabled ? 'enable' : 'disable'}`, { body: {} }).then(
      list.reload,
      setError,
    );
  };
  return (
    <Page title="Rules" subtitle="IoT SQL rules routing messages to the time-series store and other sinks.">
      <ErrorBox error={error ?? list.error} onDismiss={() => setError(null)} />
      <Card title="Topic rules">
        {(list.data?.rules ?? []).length === 0 ? (
          <Empty title="No rules">
            Create one with <code>npx thingstead rules create</code> or <code>aws iot create-topic-rule</code>
            .
          </Empty>
        ) : (
          <table data-testid="rules">
            <thead>
              <tr>
                <th>rule</th>
                <th>topic</th>
                <th>state</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data.rules.map((r: any) => (
                <tr class={selected === r.ruleName ? 'selected' : ''}>
                  <td>
                    <button class="link" onClick={() => setSelected(r.ruleName)}>
                      {r.ruleName}
                    </button>
                  </td>
                  <td>
                    <code>{r.topicPattern}</code>
                  </td>
                  <td>
                    {r.ruleDisabled ? <Badge tone="warn">disabled</Badge> : <Badge tone="ok">enabled</Badge>}
                  </td>
                  <td class="actions">
                    <button
                      onClick={() => toggle(r.ruleName, r.ruleDisabled)}
                      title={p.session.role !== 'admin' ? 'needs an admin key' : ''}
                    >
                      {r.ruleDisabled ? 'Enable' : 'Disable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      {selected && <RuleDetail name={selected} />}
    </Page>
  );
}

function RuleDetail(p: { name: string }) {
  const rule = useAsync(() => aws('iot', 'GET', `/rules/${seg(p.name)}`), [p.name]);
  const metrics = useAsync(() => aws('iot', 'GET', `/rules/${seg(p.name)}/metrics`), [p.name]);
  const trace = useAsync(() => aws('iot', 'GET', `/rules/${seg(p.name)}/trace`), [p.name]);
  useInterval(() => {
    metrics.reload();
    trace.reload();
  }, 3000);
  const [topic, setTopic] = useState('things/t1/telemetry');
  const [payload, setPayload] = useState('{"temperature": 21.5}');
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState<unknown>(null);
  const test = (e: Event) => {
    e.preventDefault();
    setError(null);
    aws('iot', 'POST', `/rules/${seg(p.name)}/test`, { body: { topic, payload } }).then(setResult, setError);
  };
  return (
    <div class="grid2">
      <Card title={`${p.name}: SQL and actions`}>
        <pre class="json">{rule.data?.rule?.sql}</pre>
        <Json value={rule.data?.rule?.actions ?? []} />
      </Card>
      <Card title="Metrics">
        <Json value={metrics.data?.metrics ?? {}} />
      </Card>
      <Card title="Test with a sample message">
        <form class="stack" onSubmit={test}>
          <input value={topic} onInput={(e) => setTopic(e.currentTarget.value)} />
          <textarea
            class="code"
            rows={3}
            value={payload}
            onInput={(e) => setPayload(e.currentTarget.value)}
          />
          <button type="submit">Run the rule (nothing is delivered)</button>
        </form>
        <ErrorBox error={error} />
        {result && <Json value={result} />}
      </Card>
      <Card title="Recent trace">
        {(trace.data?.trace ?? []).length === 0 ? (
          <Empty title="No traced messages yet" />
        ) : (
          <Json value={trace.data.trace.slice(0, 20)} />
        )}
      </Card>
    </div>
  );
}
