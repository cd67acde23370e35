// Serving lifecycle: certificate rotation without restart, and graceful
// shutdown of the real `faultline webhook` process on SIGTERM.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { makeTestCertificates, swapSecretData, writeCertDir, type TestCertificates } from '../support/webhook-tls.ts';
import { podReview, startTestWebhook, type TestWebhook } from '../support/webhook-server.ts';

/** Fingerprint of the certificate a fresh TLS connection trusting `ca` is served, or the handshake error. */
function servedFingerprint(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.destroy();
      resolve(fp);
    });
    socket.on('error', reject);
  });
}

async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms (last error: ${String(last)})`);
}

describe('webhook: TLS rotation', function () {
  this.timeout(60_000);
  let hook: TestWebhook;
  let next: TestCertificates;
  before(async () => {
    [hook, next] = await Promise.all([startTestWebhook(), makeTestCertificates('faultline-rotated-ca')]);
  });
  after(async () => {
    await hook?.close();
  });

  it('ignores a mismatched or garbage pair and keeps serving the old certificate', async () => {
    const old = new X509Certificate(hook.certs.cert).fingerprint256;
    await swapSecretData(hook.certDir, next.cert, hook.certs.key); // new cert, old key
    await new Promise((r) => setTimeout(r, 4000)); // > one poll period (3 s) plus the watch debounce
    assert.equal(await servedFingerprint(hook.port, hook.certs.ca), old);
    await swapSecretData(hook.certDir, Buffer.from('-----BEGIN CERTIFICATE-----\nhalf'), next.key);
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(await servedFingerprint(hook.port, hook.certs.ca), old);
    const review = await hook.review(podReview({ metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'a' }] } }));
    assert.equal(review.response.allowed, true);
  });

  it('serves a new certificate from another CA within 10 s of a Secret-style swap', async () => {
    const started = Date.now();
    await swapSecretData(hook.certDir, next.cert, next.key);
    const fp = await eventually('new certificate served', 10_000, () => servedFingerprint(hook.port, next.ca));
    assert.equal(fp, new X509Certificate(next.cert).fingerprint256);
    assert.ok(Date.now() - started < 10_000);
    // The old CA no longer verifies new connections.
    await assert.rejects(servedFingerprint(hook.port, hook.certs.ca));
  });
});

describe('webhook: graceful shutdown of `faultline webhook`', function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  let certDir: string | undefined;
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  it('finishes an in-flight review, closes idle connections, refuses new ones, exits 0', async () => {
    const certs = await makeTestCertificates();
    certDir = await writeCertDir(certs);
    const bin = fileURLToPath(new URL('../../bin/faultline.js', import.meta.url));
    const proc = spawn(process.execPath, [bin, 'webhook', '--cert-dir', certDir, '--port', '0', '--address', '127.0.0.1'], {
      env: { ...process.env, FAULTLINE_LOG_LEVEL: 'info', KUBERNETES_SERVICE_HOST: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    let logs = '';
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const logged = (pattern: RegExp): Promise<string> =>
      eventually(`log ${pattern.source}`, 20_000, async () => {
        if (proc.exitCode !== null) throw new Error(`webhook exited ${proc.exitCode}: ${stderr}`);
        return logs.split('\n').find((l) => pattern.test(l));
      });
    proc.stdout!.on('data', (c: Buffer) => (logs += c.toString()));
    const port = (JSON.parse(await logged(/webhook listening/)) as { port: number }).port;

    const open = (): Promise<TLSSocket> =>
      new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost' }, () => resolve(s));
        s.on('error', reject);
      });
    const body = JSON.stringify(podReview({ metadata: { name: 'slow' }, spec: { containers: [{ name: 'a', image: 'a' }] } }, { uid: 'in-flight' }));
    const split = Math.floor(body.length / 2);

    // An idle keep-alive connection that has already had one answer.
    const idle = await open();
    const idleClosed = new Promise<void>((resolve) => idle.on('close', () => resolve()));
    idle.on('error', () => {});
    let idleText = '';
    idle.on('data', (c: Buffer) => (idleText += c.toString()));
    idle.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await eventually('idle answer', 5000, async () => (idleText.includes('"ok"') ? true : undefined));

    // An in-flight review: headers and half the body now, the rest after SIGTERM.
    const busy = await open();
    let answer = '';
    busy.on('data', (c: Buffer) => (answer += c.toString()));
    // 'close', not 'end': this client half-closed (close_notify + FIN), so the
    // server may still hold those bytes unread when its drain destroys the
    // answered connection, and then the kernel resets it (ECONNRESET after the
    // whole answer, and no 'end'). The answer below proves the review finished.
    const busyClosed = new Promise<void>((resolve) => busy.on('close', () => resolve()));
    busy.on('error', () => {});
    busy.write(
      `POST /mutate/pods HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
        body.slice(0, split),
    );
    await new Promise((r) => setTimeout(r, 200));

    proc.kill('SIGTERM');
    await logged(/draining/);
    await idleClosed;
    await assert.rejects(open(), /ECONNREFUSED/);

    busy.end(body.slice(split));
    await busyClosed;
    assert.match(answer, /^HTTP\/1\.1 200 /);
    const answerBody = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    assert.equal(Buffer.byteLength(answerBody), Number(/\r\ncontent-length: (\d+)/i.exec(answer)?.[1]), 'the whole answer arrived');
    const json = JSON.parse(answerBody) as { response: { uid: string; allowed: boolean } };
    assert.equal(json.response.uid, 'in-flight');
    assert.equal(json.response.allowed, true);
    assert.equal(await exited, 0);
  });
});
