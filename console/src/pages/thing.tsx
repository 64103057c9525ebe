import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  aws,
  awsTime,
  connectMqtt,
  consoleGet,
  fmtAgo,
  fmtTime,
  seg,
  type SessionInfo,
} from '../api';
import { deltaOf, mergeState } from '../shadow';
import { Badge, Card, Dot, Empty, ErrorBox, Json, KeyValues, Loading, Page, useAsync } from '../ui';
import { SeriesChart } from './telemetry';
import { MessageList, type Received } from './topics';

/** One thing: registry record, groups, certificates, connection history, shadows, jobs, messages, telemetry. */
export function Thing(p: { name: string; session: SessionInfo }) {
  const name = p.name;
  const thing = useAsync(() => aws('iot', 'GET', `/things/${seg(name)}`), [name]);
  const groups = useAsync(() => aws('iot', 'GET', `/things/${seg(name)}/thing-groups`), [name]);
  const certs = useAsync(async () => {
    const r = await aws('iot', 'GET', `/things/${seg(name)}/principals`);
    const arns: string[] = r.principals ?? [];
    return Promise.all(
      arns.map(async (arn) => {
        const id = arn.split('/').pop()!;
        if (!arn.includes(':cert/')) return { arn, id, status: '—' };
        const d = await aws('iot', 'GET', `/certificates/${seg(id)}`).catch(() => null);
        return {
          arn,
          id,
          status: d?.certificateDescription?.status ?? 'unknown',
          created: awsTime(d?.certificateDescription?.creationDate),
        };
      }),
    );
  }, [name]);
  const connections = useAsync(() => consoleGet(`things/${seg(name)}/connections`), [name]);
  const jobs = useAsync(() => aws('iot', 'GET', `/things/${seg(name)}/jobs`), [name]);
  const series = useAsync(() => aws('iot', 'GET', '/timeseries/series', { query: { thing: name } }), [name]);

  if (thing.error) {
    const missing = thing.error instanceof ApiError && thing.error.status === 404;
    return (
      <Page title={name}>
        {missing ? (
          <Empty title={`No thing named ${name}`}>
            It may have been deleted. Go back to <a href="#/things">Things</a>.
          </Empty>
        ) : (
          <ErrorBox error={thing.error} />
        )}
      </Page>
    );
  }
  if (!thing.data) return <Loading />;
  const t = thing.data;
  const metrics: string[] = (series.data?.series ?? [])
    .filter((s: any) => !String(s.metric).startsWith('$'))
    .map((s: any) => s.metric)
    .slice(0, 6);
  return (
    <Page
      title={name}
      subtitle={t.thingTypeName ? `type ${t.thingTypeName}` : 'no thing type'}
      actions={<Dot on={connections.data?.connected === true} />}
    >
      <div class="grid2">
        <Card title="Registry">
          <KeyValues
            rows={[
              ['thing ARN', <code>{t.thingArn}</code>],
              ['thing id', <code>{t.thingId}</code>],
              ['version', String(t.version)],
              ['groups', (groups.data?.thingGroups ?? []).map((g: any) => <Badge>{g.groupName}</Badge>)],
              ...Object.entries(t.attributes ?? {}).map(
                ([k, v]) => [`attributes.${k}`, String(v)] as [string, string],
              ),
            ]}
          />
        </Card>
        <Card title="Certificates">
          {certs.data?.length === 0 ? (
            <Empty title="No certificate is attached">
              <code>npx thingstead onboard {name}</code> makes one and attaches it with a starter policy.
            </Empty>
          ) : (
            <table>
              <tbody>
                {(certs.data ?? []).map((c: any) => (
                  <tr>
                    <td>
                      <code title={c.arn}>{c.id.slice(0, 16)}…</code>
                    </td>
                    <td>
                      <Badge tone={c.status === 'ACTIVE' ? 'ok' : 'bad'}>{c.status}</Badge>
                    </td>
                    <td class="muted">{fmtTime(c.created)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <ErrorBox error={certs.error} />
        </Card>
      </div>
      <ShadowEditor thing={name} session={p.session} />
      <div class="grid2">
        <Card title="Connection history" extra={<span class="muted small">since the platform started</span>}>
          {(connections.data?.events ?? []).length === 0 ? (
            <Empty title="No connection seen yet">The thing connects with client id {name}.</Empty>
          ) : (
            <table data-testid="connections">
              <tbody>
                {connections.data.events.map((e: any) => (
                  <tr>
                    <td>
                      <Dot on={e.eventType === 'connected'} label={e.eventType} />
                    </td>
                    <td>
                      <code>{e.disconnectReason ?? e.ipAddress ?? ''}</code>
                    </td>
                    <td class="muted">{fmtAgo(e.at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Jobs">
          {(jobs.data?.executionSummaries ?? []).length === 0 ? (
            <Empty title="No job has targeted this thing">
              Start one on the <a href="#/jobs">Jobs</a> page.
            </Empty>
          ) : (
            <table>
              <tbody>
                {jobs.data.executionSummaries.map((j: any) => (
                  <tr>
                    <td>
                      <a href={`#/jobs/${encodeURIComponent(j.jobId)}`}>{j.jobId}</a>
                    </td>
                    <td>
                      <Badge>{j.jobExecutionSummary?.status}</Badge>
                    </td>
                    <td class="muted">{fmtTime(awsTime(j.jobExecutionSummary?.lastUpdatedAt))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <ErrorBox error={jobs.error} />
        </Card>
      </div>
      <Card title="Telemetry">
        {metrics.length === 0 ? (
          <Empty title="No telemetry stored for this thing">
            A topic rule with a <code>timeseries</code> action stores it, e.g. SELECT temperature FROM
            'things/+/telemetry'.
          </Empty>
        ) : (
          <div class="grid2">
            {metrics.map((m) => (
              <div>
                <h3>{m}</h3>
                <SeriesChart thing={name} metric={m} range={3_600_000} live height={160} />
              </div>
            ))}
          </div>
        )}
      </Card>
      <RecentMessages thing={name} />
    </Page>
  );
}

/** Live shadows with an editor for the desired state that shows the delta the device will receive. */
function ShadowEditor(p: { thing: string; session: SessionInfo }) {
  const [shadowName, setShadowName] = useState('');
  const names = useAsync(
    () => aws('iotdata', 'GET', `/api/things/shadow/ListNamedShadowsForThing/${seg(p.thing)}`),
    [p.thing],
  );
  const [doc, setDoc] = useState<any>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [text, setText] = useState('{\n  \n}');
  const [sent, setSent] = useState<string | null>(null);
  const load = () =>
    aws('iotdata', 'GET', `/things/${seg(p.thing)}/shadow`, {
      query: { name: shadowName || undefined },
    }).then(
      (d) => {
        setDoc(d);
        setMissing(false);
      },
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 404) {
          setDoc(null);
          setMissing(true);
        } else setError(e);
      },
    );
  useEffect(() => {
    void load();
  }, [p.thing, shadowName]);
  // Live: the shadow service publishes every accepted version on .../update/documents.
  useEffect(() => {
    let client: any = null;
    let closed = false;
    const topic = shadowName
      ? `$aws/things/${p.thing}/shadow/name/${shadowName}/update/documents`
      : `$aws/things/${p.thing}/shadow/update/documents`;
    connectMqtt().then(
      (c) => {
        if (closed) return c.end(true);
        client = c;
        c.subscribe(topic, { qos: 0 });
        c.on('message', () => void load());
      },
      () => undefined,
    );
    return () => {
      closed = true;
      client?.end(true);
    };
  }, [p.thing, shadowName]);

  let patch: any;
  let parseError: string | null = null;
  try {
    patch = JSON.parse(text);
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
      parseError = 'desired must be a JSON object';
  } catch (e) {
    parseError = (e as Error).message;
  }
  const reported = doc?.state?.reported;
  const desiredNow = doc?.state?.desired;
  const preview = useMemo(() => {
    if (parseError) return null;
    const desired = mergeState(desiredNow, patch);
    return { desired, delta: deltaOf(desired, reported) };
  }, [text, doc]);
  const submit = () => {
    setError(null);
    aws('iotdata', 'POST', `/things/${seg(p.thing)}/shadow`, {
      query: { name: shadowName || undefined },
      body: { state: { desired: patch } },
    }).then(
      (r) => {
        setSent(`Accepted as version ${r.version}.`);
        void load();
      },
      (e: unknown) => {
        setSent(null);
        setError(e);
      },
    );
  };
  const readOnly = p.session.role !== 'admin';
  return (
    <Card
      title="Shadow"
      extra={
        <select
          value={shadowName}
          onChange={(e) => setShadowName(e.currentTarget.value)}
          data-testid="shadow-name"
        >
          <option value="">classic</option>
          {(names.data?.results ?? []).map((n: string) => (
            <option value={n}>{n}</option>
          ))}
        </select>
      }
    >
      <div class="grid3">
        <div>
          <h3>Reported</h3>
          {missing ? (
            <Empty title="No shadow yet">
              The device creates it by publishing to its update topic, or set a desired state here.
            </Empty>
          ) : (
            <Json value={reported ?? {}} />
          )}
          <p class="muted small">version {doc?.version ?? '—'}</p>
        </div>
        <div>
          <h3>Desired (edit)</h3>
          <textarea
            class="code"
            rows={8}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            data-testid="desired-editor"
            spellcheck={false}
          />
          {parseError && <div class="error small">{parseError}</div>}
          <button
            onClick={submit}
            disabled={!!parseError}
            data-testid="desired-submit"
            title={readOnly ? 'a read-only key cannot update shadows' : ''}
          >
            Update desired
          </button>
          {sent && <span class="ok small"> {sent}</span>}
          <ErrorBox error={error} />
        </div>
        <div>
          <h3>Delta the device will get</h3>
          {preview?.delta ? (
            <Json value={preview.delta} />
          ) : (
            <Empty title="No delta">Desired equals reported, so the device gets nothing.</Empty>
          )}
          <p class="muted small">Current desired:</p>
          <Json value={desiredNow ?? {}} />
        </div>
      </div>
    </Card>
  );
}

/** The thing's recent messages, live over MQTT with the viewer's own authorization. */
function RecentMessages(p: { thing: string }) {
  const [messages, setMessages] = useState<Received[]>([]);
  const [error, setError] = useState<unknown>(null);
  const filter = `things/${p.thing}/#`;
  const ref = useRef<any>(null);
  useEffect(() => {
    let closed = false;
    connectMqtt().then((c) => {
      if (closed) return c.end(true);
      ref.current = c;
      c.subscribe(filter, { qos: 0 }, (err, granted) => {
        if (err || granted?.[0]?.qos === 128) setError(new Error(`subscribe to ${filter} refused`));
      });
      c.on('message', (topic, payload) =>
        setMessages((m) => [{ topic, payload: payload.toString(), at: Date.now() }, ...m].slice(0, 50)),
      );
    }, setError);
    return () => {
      closed = true;
      ref.current?.end(true);
    };
  }, [p.thing]);
  return (
    <Card title="Recent messages" extra={<code class="small">{filter}</code>}>
      <ErrorBox error={error} />
      {messages.length === 0 ? (
        <Empty title="Waiting for messages">
          Messages the thing publishes under {`things/${p.thing}/`} appear here.
        </Empty>
      ) : (
        <MessageList messages={messages} />
      )}
    </Card>
  );
}
