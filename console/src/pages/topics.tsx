import { useEffect, useRef, useState } from 'preact/hooks';
import { connectMqtt, type SessionInfo } from '../api';
import { Card, Empty, ErrorBox, Page } from '../ui';

export interface Received {
  topic: string;
  payload: string;
  at: number;
}

const MAX_MESSAGES = 500;

/**
 * The live topic viewer: subscribe to a topic filter over MQTT on WebSocket, connected as the signed-in
 * access key (the broker's own authorization: an admin key may subscribe and publish anywhere, a
 * read-only key may subscribe and receive only). At most 500 messages are kept; older ones scroll away.
 */
export function Topics(p: { session: SessionInfo }) {
  const [client, setClient] = useState<any>(null);
  const [state, setState] = useState('connecting');
  const [error, setError] = useState<unknown>(null);
  const [filter, setFilter] = useState('#');
  const [subs, setSubs] = useState<string[]>([]);
  const [messages, setMessages] = useState<Received[]>([]);
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(false);
  pausedRef.current = paused;
  const [pubTopic, setPubTopic] = useState('console/test');
  const [pubPayload, setPubPayload] = useState('{"hello":"from the console"}');

  useEffect(() => {
    let c: any = null;
    let closed = false;
    connectMqtt().then((mq) => {
      if (closed) return mq.end(true);
      c = mq;
      setClient(mq);
      mq.on('connect', () => setState('connected'));
      mq.on('reconnect', () => setState('reconnecting'));
      mq.on('close', () => setState('disconnected'));
      mq.on('error', (e: Error) => setError(e));
      mq.on('message', (topic: string, payload: Uint8Array) => {
        if (pausedRef.current) return;
        setMessages((m) =>
          [{ topic, payload: new TextDecoder().decode(payload), at: Date.now() }, ...m].slice(
            0,
            MAX_MESSAGES,
          ),
        );
      });
    }, setError);
    return () => {
      closed = true;
      c?.end(true);
    };
  }, []);

  const subscribe = (e: Event) => {
    e.preventDefault();
    if (!client || !filter) return;
    setError(null);
    client.subscribe(
      filter,
      { qos: 0 },
      (err: Error | null, granted: Array<{ qos: number; topic: string }>) => {
        if (err) return setError(err);
        if (granted?.[0] && granted[0].qos >= 128)
          return setError(
            new Error(
              `The broker refused the subscription to ${filter} (reason 0x${granted[0].qos.toString(16)}): your key's policy does not allow it.`,
            ),
          );
        setSubs((s) => [...new Set([...s, filter])]);
      },
    );
  };
  const unsubscribe = (f: string) => {
    client?.unsubscribe(f);
    setSubs((s) => s.filter((x) => x !== f));
  };
  const publish = (e: Event) => {
    e.preventDefault();
    setError(null);
    client?.publish(pubTopic, pubPayload, { qos: 1 }, (err?: Error & { code?: number }) => {
      if (err)
        setError(
          new Error(
            `Publish to ${pubTopic} refused: ${err.message}${err.code ? ` (reason 0x${err.code.toString(16)})` : ''}`,
          ),
        );
    });
  };
  return (
    <Page
      title="Topic viewer"
      subtitle="Subscribe to a topic filter from the browser, over MQTT on WebSocket, with your key's own authorization."
      actions={
        <span class={`live ${state === 'connected' ? 'on' : ''}`} data-testid="mqtt-state">
          {state}
        </span>
      }
    >
      <ErrorBox error={error} onDismiss={() => setError(null)} />
      <div class="grid2">
        <Card title="Subscribe">
          <form class="searchbar" onSubmit={subscribe}>
            <input
              value={filter}
              onInput={(e) => setFilter(e.currentTarget.value)}
              placeholder="things/+/telemetry"
              data-testid="topic-filter"
            />
            <button type="submit" disabled={state !== 'connected'}>
              Subscribe
            </button>
          </form>
          <div>
            {subs.map((s) => (
              <span class="badge">
                {s}{' '}
                <button class="link" onClick={() => unsubscribe(s)}>
                  ×
                </button>
              </span>
            ))}
          </div>
        </Card>
        <Card title="Publish">
          <form onSubmit={publish} class="stack">
            <input value={pubTopic} onInput={(e) => setPubTopic(e.currentTarget.value)} />
            <textarea
              class="code"
              rows={2}
              value={pubPayload}
              onInput={(e) => setPubPayload(e.currentTarget.value)}
            />
            <button
              type="submit"
              disabled={state !== 'connected'}
              title={p.session.role !== 'admin' ? 'a read-only key may not publish' : ''}
            >
              Publish (QoS 1)
            </button>
          </form>
        </Card>
      </div>
      <Card
        title={`Messages (${messages.length})`}
        extra={
          <>
            <button onClick={() => setPaused(!paused)}>{paused ? 'Resume' : 'Pause'}</button>{' '}
            <button onClick={() => setMessages([])}>Clear</button>
          </>
        }
      >
        {messages.length === 0 ? (
          <Empty title={subs.length ? 'Waiting for messages' : 'Not subscribed'}>
            {subs.length
              ? `Nothing has arrived on ${subs.join(', ')} yet.`
              : 'Subscribe to a filter such as # or things/+/telemetry.'}
          </Empty>
        ) : (
          <MessageList messages={messages} />
        )}
      </Card>
    </Page>
  );
}

export function MessageList(p: { messages: Received[] }) {
  return (
    <table class="messages" data-testid="messages">
      <tbody>
        {p.messages.map((m) => (
          <tr>
            <td class="muted small">{new Date(m.at).toLocaleTimeString()}</td>
            <td>
              <code>{m.topic}</code>
            </td>
            <td class="payload">{m.payload.length > 400 ? `${m.payload.slice(0, 400)}…` : m.payload}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
