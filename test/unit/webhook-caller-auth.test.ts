// Issue 13 M2 on an in-process webhook: reviews are answered only for the API
// server's client certificate, and the certificate is checked once per
// connection (caller-auth.ts's connectionAuthenticator), not per review.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { ADMISSION_CLIENT_NAME, writeAdmissionAuth, type AdmissionAuth } from '../../controlplane/admission-auth.ts';
import { loadCallerAuth } from '../../webhook/caller-auth.ts';
import { httpsCall, podReview, startTestWebhook, type TestWebhook } from '../support/webhook-server.ts';

/** Counts getPeerCertificate() calls on the listener's sockets (not the clients', which check the server's) while `body` runs. */
async function countingPeerCertificateCalls<T>(body: (calls: () => number) => Promise<T>): Promise<T> {
  const original = TLSSocket.prototype.getPeerCertificate;
  let calls = 0;
  TLSSocket.prototype.getPeerCertificate = function (this: TLSSocket, ...args: Parameters<typeof original>) {
    if ((this as TLSSocket & { server?: unknown }).server !== undefined) calls++;
    return original.apply(this, args);
  } as typeof original;
  try {
    return await body(() => calls);
  } finally {
    TLSSocket.prototype.getPeerCertificate = original;
  }
}

describe('webhook: caller authentication per connection (issue 13 M2)', function () {
  this.timeout(30_000);
  let dir: string;
  let auth: AdmissionAuth;
  let hook: TestWebhook;
  const review = JSON.stringify(podReview({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'app' }] } }, { namespace: 'shop' }));
  const agents: Agent[] = [];
  /** A keep-alive agent with one socket: every call on it shares one TLS connection. */
  const connection = async (cert?: string, key?: string): Promise<Agent> => {
    const agent = new Agent({ ca: hook.certs.ca, keepAlive: true, maxSockets: 1, ...(cert ? { cert: await readFile(cert), key: await readFile(key!) } : {}) });
    agents.push(agent);
    return agent;
  };
  const post = (agent: Agent) =>
    httpsCall({ port: hook.port, agent, method: 'POST', path: '/mutate/pods', headers: { 'content-type': 'application/json' }, body: review });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faultline-caller-auth-'));
    auth = await writeAdmissionAuth(dir, '127.0.0.1:0');
    hook = await startTestWebhook({ callerAuth: await loadCallerAuth(auth.clientCaFile, [ADMISSION_CLIENT_NAME]) });
  });
  after(async () => {
    for (const a of agents) a.destroy();
    await hook?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers every review on the API server\'s connection, reading its certificate once per connection', async () => {
    await countingPeerCertificateCalls(async (calls) => {
      const first = await connection(auth.clientCertFile, auth.clientKeyFile);
      for (let i = 0; i < 3; i++) assert.equal((await post(first)).status, 200);
      assert.equal(calls(), 1);
      const second = await connection(auth.clientCertFile, auth.clientKeyFile);
      for (let i = 0; i < 2; i++) assert.equal((await post(second)).status, 200);
      assert.equal(calls(), 2);
    });
  });

  it('refuses every review on a connection without a certificate, or with one for another name', async () => {
    for (const agent of [await connection(), await connection(auth.strangerCertFile, auth.strangerKeyFile)]) {
      for (let i = 0; i < 2; i++) {
        const answer = await post(agent);
        assert.equal(answer.status, 401, answer.text);
        assert.match((JSON.parse(answer.text) as { error: string }).error, /API server's client certificate \((no client certificate|client certificate CN "stranger" is not accepted)\)/);
      }
    }
  });
});
