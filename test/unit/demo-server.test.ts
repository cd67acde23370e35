// The demo app (demo/): its routes as a table, then the real server on
// loopback, hit over HTTP/1.1 (fetch), h2c (node:http2 and curl with prior
// knowledge), and its CLI's bad-input paths.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_SLOW_MS, MAX_SLOW_MS, route } from '../../demo/routes.ts';
import { type Demo, startDemo } from '../../demo/server.ts';
import { repoRoot } from '../support/manifests-kustomize.ts';

const run = promisify(execFile);
const facts = { protocol: 'HTTP/1.1', hostname: 'h' };

/** GET over h2c with prior knowledge; resolves status, body and elapsed ms. */
function h2get(port: number, target: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': target });
    let status = 0;
    let data = '';
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (data += chunk));
    req.on('end', () => {
      session.close();
      resolve({ status, body: JSON.parse(data) as Record<string, unknown>, ms: performance.now() - started });
    });
    req.on('error', reject);
  });
}

describe('demo app', function () {
  describe('route()', function () {
    const cases: Array<[string, string, number, Record<string, unknown>, number]> = [
      ['GET', '/healthz', 200, { status: 'ok' }, 0],
      ['HEAD', '/healthz', 200, { status: 'ok' }, 0],
      ['GET', '/?x=1', 200, { service: 'faultline-demo', hostname: 'h', protocol: 'HTTP/1.1', path: '/' }, 0],
      ['GET', '/slow', 200, { service: 'faultline-demo', hostname: 'h', protocol: 'HTTP/1.1', path: '/slow', sleptMs: DEFAULT_SLOW_MS }, DEFAULT_SLOW_MS],
      ['GET', '/slow?ms=0', 200, { service: 'faultline-demo', hostname: 'h', protocol: 'HTTP/1.1', path: '/slow', sleptMs: 0 }, 0],
      ['GET', `/slow?ms=${MAX_SLOW_MS}`, 200, { service: 'faultline-demo', hostname: 'h', protocol: 'HTTP/1.1', path: '/slow', sleptMs: MAX_SLOW_MS }, MAX_SLOW_MS],
    ];
    for (const [method, url, status, body, delayMs] of cases)
      it(`${method} ${url} -> ${status}, waits ${delayMs} ms`, function () {
        assert.deepEqual(route({ method, url, ...facts }), { status, body, delayMs });
      });

    for (const ms of ['-1', '1.5', 'abc', '', `${MAX_SLOW_MS + 1}`, '1e3', '99999999999999999999'])
      it(`/slow?ms=${ms} is a 400 naming the range`, function () {
        const r = route({ method: 'GET', url: `/slow?ms=${ms}`, ...facts });
        assert.equal(r.status, 400);
        assert.equal(r.delayMs, 0);
        assert.match(String(r.body.error), new RegExp(`from 0 to ${MAX_SLOW_MS}`));
      });

    it('refuses other methods with 405 and unknown paths with 404', function () {
      assert.equal(route({ method: 'POST', url: '/', ...facts }).status, 405);
      const r = route({ method: 'GET', url: '/nope', ...facts });
      assert.equal(r.status, 404);
      assert.match(String(r.body.error), /no route \/nope/);
    });
  });

  describe('server on loopback', function () {
    let demo: Demo;
    before(async function () {
      demo = await startDemo({ host: '127.0.0.1', httpPort: 0, h2cPort: 0 });
    });
    after(async function () {
      await demo?.close();
    });

    it('serves / and /healthz over HTTP/1.1', async function () {
      const res = await fetch(`http://127.0.0.1:${demo.httpPort}/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.deepEqual(await res.json(), { service: 'faultline-demo', hostname: (await import('node:os')).hostname(), protocol: 'HTTP/1.1', path: '/' });
      assert.equal((await fetch(`http://127.0.0.1:${demo.httpPort}/healthz`)).status, 200);
    });

    it('serves the same routes over h2c (prior knowledge), saying HTTP/2', async function () {
      const root = await h2get(demo.h2cPort, '/');
      assert.equal(root.status, 200);
      assert.equal(root.body.protocol, 'HTTP/2');
      assert.equal((await h2get(demo.h2cPort, '/missing')).status, 404);
    });

    it('/slow waits as asked on both ports', async function () {
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${demo.httpPort}/slow?ms=300`);
      assert.equal(res.status, 200);
      assert.ok(performance.now() - started >= 295, `HTTP/1.1 /slow took ${performance.now() - started} ms`);
      const h2 = await h2get(demo.h2cPort, '/slow?ms=300');
      assert.equal(h2.body.sleptMs, 300);
      assert.ok(h2.ms >= 295, `h2c /slow took ${h2.ms} ms`);
    });

    it('answers curl --http2-prior-knowledge on the h2c port with HTTP/2', async function () {
      const version = spawnSync('curl', ['--version'], { encoding: 'utf8' });
      if (version.error || !/\bHTTP2\b/.test(version.stdout)) this.skip(); // no curl with HTTP/2 here
      const { stdout } = await run('curl', ['-sS', '--http2-prior-knowledge', '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${demo.h2cPort}/healthz`]);
      assert.match(stdout, /\n2 200$/);
    });

    it('close() ends a pending /slow instead of waiting for it', async function () {
      const other = await startDemo({ host: '127.0.0.1', httpPort: 0, h2cPort: 0 });
      const pending = fetch(`http://127.0.0.1:${other.httpPort}/slow?ms=${MAX_SLOW_MS}`).then(
        () => 'answered',
        () => 'cut',
      );
      await new Promise((r) => setTimeout(r, 100));
      const started = performance.now();
      await other.close();
      assert.equal(await pending, 'cut');
      assert.ok(performance.now() - started < 2000);
    });

    it('refuses to start on a port in use, naming it', async function () {
      await assert.rejects(startDemo({ host: '127.0.0.1', httpPort: demo.httpPort, h2cPort: 0 }), /EADDRINUSE/);
    });
  });

  describe('CLI (demo/main.ts)', function () {
    const main = path.join(repoRoot, 'demo', 'main.ts');
    for (const [args, pattern] of [
      [['--http-port', '70000'], /--http-port must be a port number from 0 to 65535, got "70000"/],
      [['--h2c-port', 'x'], /--h2c-port must be a port number/],
      [['--bogus'], /Unknown option '--bogus'/],
    ] as const)
      it(`${args.join(' ')}: exits 2 with the reason and usage`, function () {
        const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 15_000 });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, pattern);
        assert.match(r.stderr, /usage: faultline-demo/);
      });

    it('--help prints the usage and exits 0', function () {
      const r = spawnSync(process.execPath, [main, '--help'], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 0);
      assert.match(r.stdout, /--h2c-port/);
    });
  });
});
