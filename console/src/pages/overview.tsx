import { useEffect, useState } from 'preact/hooks';
import { consoleGet, fmtAgo, live } from '../api';
import { TimeChart } from '../chart';
import { Card, Empty, ErrorBox, Loading, Page, Stat, number } from '../ui';

interface Count {
  name: string;
  total: number;
  connected: number;
}

/** The fleet overview, live: one SSE feed pushes a fresh overview every second. */
export function Overview() {
  const [o, setO] = useState<any>(null);
  const [error, setError] = useState<unknown>(null);
  const [up, setUp] = useState(false);
  const [rates, setRates] = useState<[number[], number[], number[]]>([[], [], []]);
  useEffect(() => {
    consoleGet('overview').then(setO, setError);
    return live(
      { overview: true },
      {
        overview: (v) => {
          setO(v);
          setRates(([t, i, out]) => {
            const keep = 300;
            return [
              [...t, v.at / 1000].slice(-keep),
              [...i, v.messagesPerSecond.in].slice(-keep),
              [...out, v.messagesPerSecond.out].slice(-keep),
            ];
          });
        },
        onState: setUp,
      },
    );
  }, []);
  if (error) return <ErrorBox error={error} />;
  if (!o) return <Loading />;
  return (
    <Page
      title="Fleet overview"
      subtitle="Connections, traffic, rules and drops, updated every second."
      actions={<span class={`live ${up ? 'on' : ''}`}>{up ? 'live' : 'reconnecting…'}</span>}
    >
      <div class="stats">
        <Stat label="things" value={number(o.things)} testid="stat-things" />
        <Stat label="connected" value={number(o.connected)} tone="ok" testid="stat-connected" />
        <Stat
          label="disconnected"
          value={number(o.disconnected)}
          tone={o.disconnected ? 'warn' : undefined}
        />
        <Stat label="MQTT connections" value={number(o.connections)} />
        <Stat label="messages/s in" value={o.messagesPerSecond.in} testid="stat-in" />
        <Stat label="messages/s out" value={o.messagesPerSecond.out} />
      </div>
      {o.things === 0 && (
        <Empty title="No things yet">
          Create one with <code>npx thingstead onboard my-device</code> or <code>aws iot create-thing</code>;
          it shows up here when it connects.
        </Empty>
      )}
      <div class="grid2">
        <Card title="Messages per second">
          <TimeChart
            data={rates}
            series={[{ label: 'in' }, { label: 'out' }]}
            height={180}
            testid="rate-chart"
          />
        </Card>
        <Card title="Recent disconnects">
          {o.recentDisconnects.length === 0 ? (
            <Empty title="No disconnects since the platform started" />
          ) : (
            <table>
              <tbody>
                {o.recentDisconnects.map((d: any) => (
                  <tr>
                    <td>
                      <a href={`#/things/${encodeURIComponent(d.clientId)}`}>{d.clientId}</a>
                    </td>
                    <td>
                      <code>{d.disconnectReason ?? '—'}</code>
                    </td>
                    <td class="muted">{fmtAgo(d.at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {o.disconnectReasons.length > 0 && (
            <p class="muted small">
              Since start: {o.disconnectReasons.map((r: any) => `${r.reason} ${number(r.count)}`).join(' · ')}
            </p>
          )}
        </Card>
        <Card title="By thing type">
          <Breakdown rows={o.byType} empty="No things" />
        </Card>
        <Card title="By thing group">
          <Breakdown
            rows={o.byGroup}
            empty="No static groups have members. Group things with aws iot add-thing-to-thing-group."
          />
        </Card>
        <Card title="Rules">
          {o.rules.length === 0 ? (
            <Empty title="No rule has matched a message yet">
              <a href="#/rules">Rules</a> route messages into the time-series store and other sinks.
            </Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>rule</th>
                  <th>matched</th>
                  <th>actions ok</th>
                  <th>failed</th>
                  <th>dropped</th>
                </tr>
              </thead>
              <tbody>
                {o.rules.map((r: any) => (
                  <tr class={r.failed || r.dropped ? 'warn' : ''}>
                    <td>{r.rule}</td>
                    <td>{number(r.matched)}</td>
                    <td>{number(r.ok)}</td>
                    <td>{number(r.failed)}</td>
                    <td>{number(r.dropped)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <p class="muted small">
            Rule queue {number(o.sinks.queueDepth)} · outbox pending {number(o.sinks.outboxPending)}
          </p>
        </Card>
        <Card title="Drops by reason">
          {o.drops.length === 0 ? (
            <Empty title="Nothing dropped">
              Every drop anywhere in the platform is counted by reason and shows here.
            </Empty>
          ) : (
            <table data-testid="drops">
              <tbody>
                {o.drops.map((d: any) => (
                  <tr>
                    <td>{d.source}</td>
                    <td>
                      <code>{d.reason}</code>
                    </td>
                    <td>{number(d.count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
      </div>
    </Page>
  );
}

function Breakdown(p: { rows: Count[]; empty: string }) {
  if (p.rows.length === 0) return <Empty title={p.empty} />;
  const max = Math.max(...p.rows.map((r) => r.total));
  return (
    <table class="breakdown">
      <tbody>
        {p.rows.map((r) => (
          <tr>
            <td>{r.name}</td>
            <td class="barcell">
              <div class="bar" style={{ width: `${(100 * r.total) / max}%` }}>
                <div class="bar-on" style={{ width: `${r.total ? (100 * r.connected) / r.total : 0}%` }} />
              </div>
            </td>
            <td class="num">
              {number(r.connected)} / {number(r.total)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
