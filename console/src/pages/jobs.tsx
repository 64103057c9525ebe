import { useEffect, useState } from 'preact/hooks';
import { aws, awsTime, consoleGet, fmtTime, seg, type SessionInfo } from '../api';
import { TimeChart } from '../chart';
import { Badge, Card, Empty, ErrorBox, Page, Stat, number, useAsync, useInterval } from '../ui';

const STATES = [
  'Queued',
  'InProgress',
  'Succeeded',
  'Failed',
  'Rejected',
  'Canceled',
  'TimedOut',
  'Removed',
] as const;

/** Jobs: the list, and a form to start one on things or thing groups (CreateJob). */
export function Jobs(p: { session: SessionInfo }) {
  const list = useAsync(() => aws('iot', 'GET', '/jobs', { query: { maxResults: 100 } }), []);
  const platform = useAsync(() => consoleGet('session'), []);
  useInterval(list.reload, 5000);
  const [jobId, setJobId] = useState(`job-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`);
  const [targets, setTargets] = useState('');
  const [kind, setKind] = useState<'thing' | 'thinggroup'>('thing');
  const [documentText, setDocumentText] = useState('{"operation": "reboot"}');
  const [error, setError] = useState<unknown>(null);
  const create = (e: Event) => {
    e.preventDefault();
    setError(null);
    const pl = platform.data?.platform;
    const arns = targets
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((t) => (t.startsWith('arn:') ? t : `arn:aws:iot:${pl?.region}:${pl?.accountId}:${kind}/${t}`));
    aws('iot', 'PUT', `/jobs/${seg(jobId)}`, {
      body: { targets: arns, document: documentText, targetSelection: 'SNAPSHOT' },
    }).then(() => (location.hash = `#/jobs/${encodeURIComponent(jobId)}`), setError);
  };
  return (
    <Page title="Jobs" subtitle="Remote operations rolled out to things and groups, with their progress.">
      <Card title="Start a job">
        <form class="stack" onSubmit={create} data-testid="create-job">
          <div class="toolbar">
            <input
              value={jobId}
              onInput={(e) => setJobId(e.currentTarget.value)}
              placeholder="job id"
              name="jobId"
              required
            />
            <select value={kind} onChange={(e) => setKind(e.currentTarget.value as 'thing' | 'thinggroup')}>
              <option value="thing">things</option>
              <option value="thinggroup">thing groups</option>
            </select>
            <input
              value={targets}
              onInput={(e) => setTargets(e.currentTarget.value)}
              placeholder="names or ARNs, separated by spaces"
              name="targets"
              required
            />
          </div>
          <textarea
            class="code"
            rows={3}
            value={documentText}
            onInput={(e) => setDocumentText(e.currentTarget.value)}
            name="document"
          />
          <button type="submit" title={p.session.role !== 'admin' ? 'needs an admin key' : ''}>
            Start job
          </button>
        </form>
        <ErrorBox error={error} />
      </Card>
      <Card title="Jobs">
        <ErrorBox error={list.error} />
        {(list.data?.jobs ?? []).length === 0 ? (
          <Empty title="No jobs yet">
            Start one above, or with <code>aws iot create-job</code> or <code>npx thingstead ota deploy</code>
            .
          </Empty>
        ) : (
          <table data-testid="jobs">
            <thead>
              <tr>
                <th>job</th>
                <th>status</th>
                <th>targets</th>
                <th>created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.jobs.map((j: any) => (
                <tr>
                  <td>
                    <a href={`#/jobs/${encodeURIComponent(j.jobId)}`}>{j.jobId}</a>
                  </td>
                  <td>
                    <Badge>{j.status}</Badge>
                  </td>
                  <td>{j.targetSelection}</td>
                  <td class="muted">{fmtTime(awsTime(j.createdAt))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </Page>
  );
}

/** One job: its counts, a rollout chart (cumulative per state, sampled while the page is open) and executions. */
export function Job(p: { id: string; session: SessionInfo }) {
  const job = useAsync(() => aws('iot', 'GET', `/jobs/${seg(p.id)}`), [p.id]);
  const execs = useAsync(
    () => aws('iot', 'GET', `/jobs/${seg(p.id)}/things`, { query: { maxResults: 100 } }),
    [p.id],
  );
  const [history, setHistory] = useState<number[][]>(() => [[], ...STATES.slice(0, 4).map(() => [])]);
  const [error, setError] = useState<unknown>(null);
  const d = job.data?.job?.jobProcessDetails ?? {};
  const count = (s: string) => Number(d[`numberOf${s}Things`] ?? 0);
  const active = job.data?.job?.status === 'IN_PROGRESS' || job.data?.job?.status === 'SCHEDULED';
  useInterval(
    () => {
      job.reload();
      execs.reload();
    },
    active ? 1000 : null,
  );
  // One sample per refresh: the chart shows how the rollout moved while you watched.
  useEffect(() => {
    if (!job.data) return;
    const now = Date.now() / 1000;
    const sample = [now, ...STATES.slice(0, 4).map((s) => count(s))];
    setHistory((h) => h.map((col, i) => [...col, sample[i]!].slice(-600)));
  }, [job.data]);
  const cancel = () => {
    setError(null);
    aws('iot', 'PUT', `/jobs/${seg(p.id)}/cancel`, { body: { comment: 'canceled from the console' } }).then(
      job.reload,
      setError,
    );
  };
  if (job.error) return <ErrorBox error={job.error} />;
  const total = STATES.reduce((n, s) => n + count(s), 0);
  const done =
    count('Succeeded') +
    count('Failed') +
    count('Rejected') +
    count('Canceled') +
    count('TimedOut') +
    count('Removed');
  return (
    <Page
      title={`Job ${p.id}`}
      subtitle={job.data?.job?.description}
      actions={
        <>
          <Badge>{job.data?.job?.status ?? '…'}</Badge>{' '}
          {active && (
            <button class="danger" onClick={cancel} data-testid="cancel-job">
              Cancel job
            </button>
          )}
        </>
      }
    >
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      <div class="stats" data-testid="job-stats">
        {STATES.map((s) => (
          <Stat
            label={s}
            value={number(count(s))}
            tone={
              s === 'Succeeded'
                ? 'ok'
                : s === 'Failed' || s === 'TimedOut' || s === 'Rejected'
                  ? 'bad'
                  : undefined
            }
            testid={`job-${s}`}
          />
        ))}
      </div>
      <div class="progress" title={`${done} of ${total} finished`}>
        <div
          class="progress-done"
          style={{ width: `${total ? (100 * count('Succeeded')) / total : 0}%` }}
          data-testid="job-progress"
        />
        <div
          class="progress-failed"
          style={{
            width: `${total ? (100 * (count('Failed') + count('TimedOut') + count('Rejected'))) / total : 0}%`,
          }}
        />
      </div>
      <Card title="Rollout">
        <TimeChart
          data={history as any}
          series={STATES.slice(0, 4).map((s) => ({ label: s, stepped: true }))}
          height={220}
          testid="job-chart"
        />
      </Card>
      <Card title="Executions">
        {(execs.data?.executionSummaries ?? []).length === 0 ? (
          <Empty title="No executions yet">Executions appear as the rollout reaches each target.</Empty>
        ) : (
          <table data-testid="executions">
            <tbody>
              {execs.data.executionSummaries.map((e: any) => (
                <tr>
                  <td>
                    <a href={`#/things/${encodeURIComponent(String(e.thingArn).split('/').pop()!)}`}>
                      {String(e.thingArn).split('/').pop()}
                    </a>
                  </td>
                  <td>
                    <Badge tone={e.jobExecutionSummary?.status === 'SUCCEEDED' ? 'ok' : undefined}>
                      {e.jobExecutionSummary?.status}
                    </Badge>
                  </td>
                  <td class="muted">{fmtTime(awsTime(e.jobExecutionSummary?.lastUpdatedAt))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </Page>
  );
}
