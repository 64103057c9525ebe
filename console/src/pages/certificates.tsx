import { useState } from 'preact/hooks';
import { aws, awsTime, fmtTime, seg, type SessionInfo } from '../api';
import { Badge, Card, Empty, ErrorBox, Page, useAsync } from '../ui';

/** Device certificates and registered CAs; activate, deactivate or revoke (admin keys only: UpdateCertificate). */
export function Certificates(p: { session: SessionInfo }) {
  const certs = useAsync(() => aws('iot', 'GET', '/certificates', { query: { pageSize: 250 } }), []);
  const cas = useAsync(() => aws('iot', 'GET', '/cacertificates', { query: { pageSize: 250 } }), []);
  const [error, setError] = useState<unknown>(null);
  const setStatus = (id: string, status: string) => {
    setError(null);
    aws('iot', 'PUT', `/certificates/${seg(id)}`, { query: { newStatus: status } }).then(
      certs.reload,
      setError,
    );
  };
  const tone = (s: string) => (s === 'ACTIVE' ? 'ok' : s === 'REVOKED' ? 'bad' : 'warn');
  return (
    <Page
      title="Certificates and CAs"
      subtitle="Device identities (X.509) and the certificate authorities devices may chain to."
    >
      <ErrorBox error={error ?? certs.error} onDismiss={() => setError(null)} />
      <Card title="Device certificates">
        {(certs.data?.certificates ?? []).length === 0 ? (
          <Empty title="No device certificates">
            <code>npx thingstead onboard my-device</code> makes a key pair and a certificate signed by the
            platform CA.
          </Empty>
        ) : (
          <table data-testid="certificates">
            <thead>
              <tr>
                <th>certificate id</th>
                <th>status</th>
                <th>created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {certs.data.certificates.map((c: any) => (
                <tr>
                  <td>
                    <code title={c.certificateArn}>{c.certificateId.slice(0, 24)}…</code>
                  </td>
                  <td>
                    <Badge tone={tone(c.status)}>{c.status}</Badge>
                  </td>
                  <td class="muted">{fmtTime(awsTime(c.creationDate))}</td>
                  <td class="actions">
                    {c.status !== 'ACTIVE' && c.status !== 'REVOKED' && (
                      <button onClick={() => setStatus(c.certificateId, 'ACTIVE')}>Activate</button>
                    )}
                    {c.status === 'ACTIVE' && (
                      <button onClick={() => setStatus(c.certificateId, 'INACTIVE')}>Deactivate</button>
                    )}
                    {c.status !== 'REVOKED' && (
                      <button
                        class="danger"
                        onClick={() =>
                          confirm(
                            `Revoke ${c.certificateId}? Devices using it are disconnected, and it cannot be undone.`,
                          ) && setStatus(c.certificateId, 'REVOKED')
                        }
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {p.session.role !== 'admin' && <p class="muted small">Changing a certificate needs an admin key.</p>}
      </Card>
      <Card title="Certificate authorities">
        <ErrorBox error={cas.error} />
        {(cas.data?.certificates ?? []).length === 0 ? (
          <Empty title="Only the platform CA">
            Register your own CA with <code>aws iot register-ca-certificate</code> to accept devices it signs.
          </Empty>
        ) : (
          <table>
            <tbody>
              {cas.data.certificates.map((c: any) => (
                <tr>
                  <td>
                    <code>{c.certificateId.slice(0, 24)}…</code>
                  </td>
                  <td>
                    <Badge tone={tone(c.status)}>{c.status}</Badge>
                  </td>
                  <td class="muted">{fmtTime(awsTime(c.creationDate))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </Page>
  );
}
