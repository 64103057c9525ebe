import { ApiError, aws, fmtTime } from '../api';
import { Badge, Card, Empty, ErrorBox, Json, Page, useAsync } from '../ui';

/**
 * Provisioning traces: one per attempt (fleet provisioning over MQTT, RegisterThing, JITP, bulk), with its
 * steps and the exact refusal reason. Read from the provisioning context's trace API when the platform has
 * one; otherwise an empty state says what the page will show.
 */
export function Provisioning() {
  const traces = useAsync(() => aws('iot', 'GET', '/provisioning/traces'), []);
  const absent =
    traces.error instanceof ApiError &&
    (traces.error.status === 404 || traces.error.type === 'UnknownOperationException');
  const list: any[] = traces.data?.traces ?? traces.data?.items ?? [];
  return (
    <Page
      title="Provisioning traces"
      subtitle="Every provisioning attempt, step by step, with the reason a refused one was refused."
    >
      {absent ? (
        <Empty title="This platform serves no provisioning trace API">
          When provisioning (fleet provisioning by claim, just-in-time, bulk registration) is enabled, each
          attempt is traced here.
        </Empty>
      ) : (
        <ErrorBox error={traces.error} />
      )}
      {!absent && traces.data && list.length === 0 && (
        <Empty title="No provisioning attempts yet">
          A device provisioning with a claim certificate, or a JITP CA, shows up here.
        </Empty>
      )}
      {list.map((t) => (
        <Card
          title={`${t.flow ?? ''} ${t.thingName ?? t.clientId ?? t.attemptId}`}
          extra={
            <>
              <Badge tone={t.result === 'accepted' ? 'ok' : 'bad'}>{t.result}</Badge>{' '}
              <span class="muted small">
                {fmtTime(t.startedAt)} · {t.durationMs} ms
              </span>
            </>
          }
        >
          {t.message && (
            <p>
              <code>{t.reason}</code> {t.message}
            </p>
          )}
          <Json value={t.steps ?? []} />
        </Card>
      ))}
    </Page>
  );
}
