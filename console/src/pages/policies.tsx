import { useState } from 'preact/hooks';
import { aws, seg } from '../api';
import { Badge, Card, Empty, ErrorBox, Json, Page, useAsync } from '../ui';

const ACTIONS = ['PUBLISH', 'SUBSCRIBE', 'RECEIVE', 'CONNECT'];

/** IoT policies and the simulator: "would this principal be allowed this action?" (TestAuthorization). */
export function Policies() {
  const list = useAsync(() => aws('iot', 'GET', '/policies', { query: { pageSize: 250 } }), []);
  const [selected, setSelected] = useState<string | null>(null);
  const doc = useAsync(
    async () => (selected ? aws('iot', 'GET', `/policies/${seg(selected)}`) : null),
    [selected],
  );
  const [principal, setPrincipal] = useState('');
  const [clientId, setClientId] = useState('');
  const [action, setAction] = useState('PUBLISH');
  const [resource, setResource] = useState('');
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState<unknown>(null);
  const simulate = (e: Event) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    aws('iot', 'POST', '/test-authorization', {
      query: { clientId: clientId || undefined },
      body: { principal, authInfos: [{ actionType: action, resources: [resource] }] },
    }).then(setResult, setError);
  };
  const decision = result?.authResults?.[0]?.authDecision as string | undefined;
  return (
    <Page
      title="Policies"
      subtitle="AWS IoT policy documents, and a simulator that evaluates them as the broker does."
    >
      <div class="grid2">
        <Card title="Policies">
          <ErrorBox error={list.error} />
          {(list.data?.policies ?? []).length === 0 ? (
            <Empty title="No policies">
              Create one with <code>aws iot create-policy</code>; onboarding makes starter policies.
            </Empty>
          ) : (
            <table>
              <tbody>
                {list.data.policies.map((p: any) => (
                  <tr class={selected === p.policyName ? 'selected' : ''}>
                    <td>
                      <button class="link" onClick={() => setSelected(p.policyName)}>
                        {p.policyName}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title={selected ?? 'Policy document'}>
          {selected && doc.data ? (
            <Json value={safeParse(doc.data.policyDocument)} />
          ) : (
            <Empty title="Pick a policy to read its document" />
          )}
        </Card>
      </div>
      <Card title="Simulator">
        <form class="toolbar" onSubmit={simulate} data-testid="simulator">
          <input
            value={principal}
            onInput={(e) => setPrincipal(e.currentTarget.value)}
            placeholder="principal: certificate ARN (or 'anonymous')"
            required
          />
          <input
            value={clientId}
            onInput={(e) => setClientId(e.currentTarget.value)}
            placeholder="client id (optional)"
          />
          <select value={action} onChange={(e) => setAction(e.currentTarget.value)}>
            {ACTIONS.map((a) => (
              <option value={a}>{a}</option>
            ))}
          </select>
          <input
            value={resource}
            onInput={(e) => setResource(e.currentTarget.value)}
            placeholder="arn:aws:iot:region:account:topic/things/t1/x"
            required
          />
          <button type="submit">Would it be allowed?</button>
        </form>
        <ErrorBox error={error} />
        {result && (
          <div>
            <p>
              Decision: <Badge tone={decision === 'ALLOWED' ? 'ok' : 'bad'}>{decision}</Badge>
            </p>
            <Json value={result.authResults} />
          </div>
        )}
      </Card>
    </Page>
  );
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
