// The material in use: a real Node HTTPS server with tls.crt/tls.key, and
// TLS clients that do (or do not) pin ca.crt — what the API server does with caBundle.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ensureCertificates, type EnsureResult } from '../../certs/index.ts';
import { silent, tempDir } from '../support/certs-tools.ts';

const SERVICE = 'faultline';
const NS = 'faultline-system';

describe('certs: TLS with the generated material', function () {
  let cleanup: () => Promise<void>;
  let result: EnsureResult;
  let server: Server;
  let port: number;
  let ca: string;

  before(async function () {
    const tmp = await tempDir();
    cleanup = tmp.cleanup;
    result = await ensureCertificates({ dir: tmp.dir, service: SERVICE, namespace: NS, hosts: ['127.0.0.1'], log: silent });
    ca = await readFile(result.paths.caCert, 'utf8');
    // The server reads the files from disk, as the webhook does.
    server = createServer({ cert: await readFile(result.paths.cert), key: await readFile(result.paths.key) }, (_req, res) => {
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async function () {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await cleanup();
  });

  /** GET / on the server; resolves to the body, rejects with the TLS error. */
  function get(tls: { ca?: string; servername?: string }): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false, ...tls }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('a client pinned to ca.crt connects by the Service DNS name', async function () {
    assert.equal(await get({ ca, servername: `${SERVICE}.${NS}.svc` }), 'ok');
    assert.equal(await get({ ca, servername: `${SERVICE}.${NS}.svc.cluster.local` }), 'ok');
  });

  it('a client pinned to ca.crt connects by IP when 127.0.0.1 was a --host', async function () {
    assert.equal(await get({ ca }), 'ok');
  });

  it('an unpinned client (system roots) refuses the certificate', async function () {
    await assert.rejects(get({ servername: `${SERVICE}.${NS}.svc` }), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('a pinned client refuses a name the certificate was not issued for', async function () {
    await assert.rejects(get({ ca, servername: `other.${NS}.svc` }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });
});
