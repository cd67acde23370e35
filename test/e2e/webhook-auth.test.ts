// Issue 13 M2: the local control plane runs as docs/security.md sets a
// cluster up — kube-apiserver presents a client certificate to the webhook
// (AdmissionConfiguration kubeConfigFile) and the webhook answers reviews
// only for it. Every other e2e suite already proves the API server gets
// through; this one knocks on the webhook's port as a pod in the cluster
// could, and checks that nothing about any tenant comes back.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { API_GROUP, API_GROUP_VERSION, API_VERSION } from '../../policies/wellknown.ts';
import { tenantNamespace, useControlPlane } from '../support/e2e-cluster.ts';

interface Answer {
  status: number;
  body: string;
}

function post(port: number, path: string, body: string, client?: { cert: string; key: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // The caller under test is the client; the server's identity is not what this checks.
        rejectUnauthorized: false,
        ...(client ?? {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('e2e: only the API server gets admission reviews answered (client certificates)', function () {
  const cp = useControlPlane();
  let review = '';
  const SECRET_LIMIT = '1234ms';

  before(async function () {
    this.timeout(60_000);
    const ns = await tenantNamespace(cp(), { kinds: ['http.delay'], limits: { maxDelay: SECRET_LIMIT } }, { group: 'tenant-secret-group' });
    const policy = { apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', metadata: { name: 'probe', namespace: ns }, spec: { duration: '1m', http: [{ delay: { fixed: '5s' } }] } };
    review = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'probe',
        kind: { group: API_GROUP, version: API_VERSION, kind: 'ChaosPolicy' },
        resource: { group: API_GROUP, version: API_VERSION, resource: 'chaospolicies' },
        name: 'probe',
        namespace: ns,
        operation: 'CREATE',
        userInfo: { username: 'mallory' },
        object: policy,
      },
    });
  });

  it('answers 401, and nothing about the tenant, without a client certificate or with one for another name', async () => {
    const auth = cp().admissionAuth!;
    const stranger = { cert: await readFile(auth.strangerCertFile, 'utf8'), key: await readFile(auth.strangerKeyFile, 'utf8') };
    for (const client of [undefined, stranger]) {
      for (const path of ['/validate/chaospolicies', '/mutate/pods']) {
        const answer = await post(cp().webhookPort, path, review, client);
        assert.equal(answer.status, 401, answer.body);
        assert.doesNotMatch(answer.body, new RegExp(`${SECRET_LIMIT}|tenant-|secret-group|maxDelay`), answer.body);
      }
    }
  });

  it('answers the API server’s certificate with the full verdict', async () => {
    const auth = cp().admissionAuth!;
    const apiserver = { cert: await readFile(auth.clientCertFile, 'utf8'), key: await readFile(auth.clientKeyFile, 'utf8') };
    const answer = await post(cp().webhookPort, '/validate/chaospolicies', review, apiserver);
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.body, new RegExp(SECRET_LIMIT));
  });
});
