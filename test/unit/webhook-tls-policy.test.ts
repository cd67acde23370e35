// Issue 13 L4: what the webhook's listener accepts. TLS 1.2 only with ECDHE
// and an AEAD cipher (no static RSA, no CBC/SHA-1), TLS 1.3, no renegotiation,
// a bound on handshakes that never start, and a cap on held connections.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { startTestWebhook, type TestWebhook } from '../support/webhook-server.ts';

function handshake(port: number, ca: string | Buffer, opts: tls.ConnectionOptions): Promise<{ ok: boolean; cipher?: string; protocol?: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...opts }, () => {
      resolve({ ok: true, cipher: socket.getCipher().name, protocol: socket.getProtocol() ?? '' });
      socket.destroy();
    });
    socket.on('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

/** Resolves with how long the server took to close a raw socket that sends nothing. */
function heldFor(port: number, limitMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${limitMs} ms`));
    }, limitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    socket.on('error', () => undefined);
  });
}

describe('webhook: TLS and connection bounds (issue 13 L4)', function () {
  this.timeout(20_000);
  let hook: TestWebhook;
  before(async () => {
    hook = await startTestWebhook({ handshakeTimeoutMs: 300, maxConnections: 4 });
  });
  after(() => hook?.close());

  it('refuses TLS 1.2 static-RSA and CBC suites', async () => {
    for (const ciphers of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384']) {
      const r = await handshake(hook.port, hook.certs.ca, { maxVersion: 'TLSv1.2', ciphers });
      assert.equal(r.ok, false, `${ciphers} was accepted`);
    }
  });

  it('accepts TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305, and TLS 1.3', async () => {
    for (const ciphers of ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305']) {
      const r = await handshake(hook.port, hook.certs.ca, { maxVersion: 'TLSv1.2', ciphers });
      assert.deepEqual([r.ok, r.cipher, r.protocol], [true, ciphers, 'TLSv1.2'], r.error);
    }
    const r13 = await handshake(hook.port, hook.certs.ca, { minVersion: 'TLSv1.3' });
    assert.equal(r13.protocol, 'TLSv1.3', r13.error);
  });

  it('refuses a TLS 1.2 client\'s renegotiation, so a connection keeps its handshake\'s certificate', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: hook.port, ca: hook.certs.ca, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
        socket.renegotiate({}, (err) => resolve(err ? `refused: ${err.message}` : 'renegotiated'));
      });
      socket.on('error', (err) => resolve(`refused: ${err.message}`));
    });
    assert.match(outcome, /^refused: .*no renegotiation/);
  });

  it('closes a connection that never sends a ClientHello after the handshake timeout', async () => {
    const ms = await heldFor(hook.port, 5_000);
    assert.ok(ms >= 250 && ms < 3_000, `closed after ${ms} ms`);
  });

  it('caps the connections it holds', async () => {
    const idle = await Promise.all(Array.from({ length: 4 }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect(hook.port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    })));
    try {
      // The fifth is accepted by the kernel and closed at once by the server.
      const ms = await heldFor(hook.port, 250);
      assert.ok(ms < 250);
    } finally {
      for (const s of idle) s.destroy();
    }
  });
});
