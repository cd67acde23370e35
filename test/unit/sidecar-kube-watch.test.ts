import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { decodeEvent, KubeClient, LineSplitter, watchEvents } from '../../kube/client.ts';
import { FileToken, kubeconfigConnection, staticToken, type KubeConnection } from '../../kube/connection.ts';
import { Backoff } from '../../common/backoff.ts';
import { ListWatch, type KubeObject } from '../../kube/list-watch.ts';
import { FakeKubeApiserver } from '../support/sidecar-kube-apiserver.ts';
import { makeTestCertificates, type TestCertificates } from '../support/webhook-tls.ts';

const COLLECTION = '/apis/chaos.faultline.dev/v1alpha1/namespaces/ns/chaospolicies';

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('sidecar kube: line splitting and event decoding', () => {
  const lines = (s: LineSplitter, ...chunks: string[]): string[] => chunks.flatMap((c) => s.push(Buffer.from(c)).map((b) => b.toString()));

  it('joins lines split across chunks and keeps the partial tail', () => {
    const s = new LineSplitter(1024);
    assert.deepEqual(lines(s, '{"a":', '1}\n{"b"', ':2}\n{"c":3}\n{"d"'), ['{"a":1}', '{"b":2}', '{"c":3}']);
    assert.equal(s.pending, 4);
    assert.deepEqual(lines(s, ':4}\n'), ['{"d":4}']);
    assert.equal(s.pending, 0);
  });

  it('never splits a multi-byte character, wherever the chunk boundary falls', () => {
    const line = Buffer.from('{"name":"héllo→✓"}\n');
    for (let cut = 1; cut < line.length; cut++) {
      const s = new LineSplitter(1024);
      const got = [...s.push(line.subarray(0, cut)), ...s.push(line.subarray(cut))].map((b) => b.toString('utf8'));
      assert.deepEqual(got, ['{"name":"héllo→✓"}'], `cut at ${cut}`);
    }
  });

  it('refuses a line larger than the limit, whole or accumulated', () => {
    assert.throws(() => new LineSplitter(8).push(Buffer.from('123456789\n')), /larger than 8 bytes/);
    const s = new LineSplitter(8);
    s.push(Buffer.from('12345'));
    assert.throws(() => s.push(Buffer.from('6789')), /larger than 8 bytes/);
    assert.deepEqual(new LineSplitter(8).push(Buffer.from('12345678\n')).map(String), ['12345678']);
  });

  it('decodes watch events; blank lines are keep-alives, anything else is an error', () => {
    assert.deepEqual(decodeEvent(Buffer.from('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\r')), { type: 'ADDED', object: { metadata: { name: 'a' } } });
    assert.equal(decodeEvent(Buffer.from('  ')), undefined);
    assert.throws(() => decodeEvent(Buffer.from('{"type":"ADDED"}')), /not a watch event/);
    assert.throws(() => decodeEvent(Buffer.from('{"type":"ADDED","object":[]}')), /not a watch event/);
    assert.throws(() => decodeEvent(Buffer.from('{"type":')), SyntaxError);
  });

  it('streams events in order and reports a stream cut mid-event', async () => {
    async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
      for (const p of parts) yield Buffer.from(p);
    }
    const got: string[] = [];
    for await (const ev of watchEvents(chunks('{"type":"ADDED","object":{}}\n\n{"type":"BOOK', 'MARK","object":{}}\n'), 1024)) got.push(ev.type);
    assert.deepEqual(got, ['ADDED', 'BOOKMARK']);
    await assert.rejects(async () => {
      for await (const _ of watchEvents(chunks('{"type":"ADDED","object":{}}\n{"type":"MOD'), 1024));
    }, /ended in the middle of an event/);
  });
});

describe('sidecar kube: backoff', () => {
  it('doubles from 200 ms to a 30 s cap, each delay drawn from [base/2, base], and resets', () => {
    const low = new Backoff(200, 30_000, () => 0);
    const high = new Backoff(200, 30_000, () => 1);
    const lows = Array.from({ length: 10 }, () => low.next());
    const highs = Array.from({ length: 10 }, () => high.next());
    assert.deepEqual(highs, [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    assert.deepEqual(lows, highs.map((h) => h / 2));
    low.reset();
    assert.equal(low.next(), 100);
  });

  it('spreads a fleet: different random draws give different delays', () => {
    const delays = new Set(Array.from({ length: 50 }, () => new Backoff().next()));
    assert.ok(delays.size > 10, `only ${delays.size} distinct first delays`);
    for (const d of delays) assert.ok(d >= 100 && d <= 200, String(d));
  });
});

describe('sidecar kube: list+watch against a local HTTPS API server', function () {
  this.timeout(20_000);
  let api: FakeKubeApiserver;
  let lw: ListWatch | undefined;
  let client: KubeClient | undefined;
  let logs: Array<{ msg: string; [k: string]: unknown }>;
  /** Every onChange, as sorted "name:spec.v" strings. */
  let changes: string[][];
  const last = (): string[] | undefined => changes.at(-1);

  let certs: TestCertificates;
  before(async () => {
    certs = await makeTestCertificates('fake-kube-apiserver-ca');
  });
  beforeEach(async () => {
    api = await FakeKubeApiserver.start(COLLECTION, certs);
    logs = [];
    changes = [];
  });
  afterEach(async () => {
    lw?.stop();
    client?.close();
    lw = undefined;
    client = undefined;
    await api.close();
  });

  const upsert = (name: string, v: number): void => void api.upsert(name, { spec: { v } });
  const remove = (name: string): void => api.remove(name);

  function connection(over: Partial<KubeConnection> = {}): KubeConnection {
    return {
      server: new URL(api.url), ca: api.ca, insecureSkipTLSVerify: false, tlsServerName: undefined, clientCert: undefined, clientKey: undefined,
      token: undefined, origin: 'test', ...over,
    };
  }

  function start(conn: KubeConnection = connection(), opts: { pageSize?: number; watchTimeoutS?: number } = {}): Promise<void> {
    client = new KubeClient(conn);
    const log = pino({ level: 'debug' }, new Writable({ write: (c: Buffer, _e, cb) => (logs.push(JSON.parse(c.toString())), cb()) }));
    lw = new ListWatch({
      client,
      path: COLLECTION,
      kind: 'ChaosPolicy',
      log,
      project: (o: KubeObject) => o,
      onChange: (objs) => changes.push(objs.map((o) => `${o.metadata?.name}:${(o.spec as { v?: number })?.v}`).sort()),
      backoff: new Backoff(20, 100),
      ...opts,
    });
    return lw.start();
  }
  const watchOpen = (n = 1): Promise<true> => waitFor(`${n} open watch(es)`, () => api.openWatches >= n || false);
  const sees = (want: string[]): Promise<string[]> => waitFor(`onChange ${JSON.stringify(want)} (last ${JSON.stringify(last())})`, () => (JSON.stringify(last()) === JSON.stringify(want) ? last() : undefined));

  it('lists page by page, then watches from the list resourceVersion and applies ADDED/MODIFIED/DELETED split across chunks', async () => {
    for (const [i, n] of ['a', 'b', 'c', 'd', 'e'].entries()) upsert(n, i);
    const listedAt = api.resourceVersion;
    await start(connection(), { pageSize: 2 });
    // One complete change after the whole list, never a half-listed set.
    assert.deepEqual(changes, [['a:0', 'b:1', 'c:2', 'd:3', 'e:4']]);
    assert.deepEqual(api.listRequests().map((r) => [r.query.get('limit'), r.query.get('continue')]), [['2', null], ['2', '2'], ['2', '4']]);
    await watchOpen();
    const [w] = api.watchRequests();
    assert.equal(w!.query.get('resourceVersion'), listedAt);
    assert.equal(w!.query.get('allowWatchBookmarks'), 'true');
    const timeout = Number(w!.query.get('timeoutSeconds'));
    assert.ok(timeout >= 300 && timeout <= 600, `timeoutSeconds ${timeout}`);

    api.splitEvents = true;
    upsert('a', 10);
    await sees(['a:10', 'b:1', 'c:2', 'd:3', 'e:4']);
    remove('b');
    upsert('f', 5);
    await sees(['a:10', 'c:2', 'd:3', 'e:4', 'f:5']);
    assert.equal(lw!.resourceVersion, api.resourceVersion);
    remove('f');
    await sees(['a:10', 'c:2', 'd:3', 'e:4']);
  });

  it('resumes from the last resourceVersion (a bookmark advances it) when the server ends the watch', async () => {
    upsert('a', 1);
    await start();
    await watchOpen();
    // Unrelated writes move the resourceVersion; only a bookmark tells the client.
    api.upsertUnseen('unseen', { spec: { v: 9 } });
    api.bookmark();
    await waitFor('bookmark', () => lw!.resourceVersion === api.resourceVersion);
    assert.equal(changes.length, 1, 'a bookmark is not a change');
    api.endWatches();
    await waitFor('a second watch', () => api.watchRequests().length === 2);
    assert.equal(api.watchRequests()[1]!.query.get('resourceVersion'), api.resourceVersion);
    assert.equal(api.listRequests().length, 1, 'no relist');
  });

  it('relists on a 410 ERROR event (resourceVersion compacted) and picks up what it missed', async () => {
    upsert('a', 1);
    await start();
    await watchOpen();
    // Changed while the client was not listening, history compacted: resuming is impossible.
    api.upsertUnseen('a', { spec: { v: 2 } });
    api.endWatches();
    await sees(['a:2']);
    assert.equal(api.listRequests().length, 2);
    await watchOpen();
    assert.equal(api.watchRequests().at(-1)!.query.get('resourceVersion'), api.resourceVersion);
    assert.ok(logs.some((l) => l.msg === 'ChaosPolicy watch expired; relisting'), JSON.stringify(logs));
    upsert('b', 3);
    await waitFor('b after relist', () => last()?.includes('b:3'));
  });

  it('relists on an HTTP 410 answer to the watch request', async () => {
    upsert('a', 1);
    await start();
    await watchOpen();
    api.watchStatuses.push(410);
    api.endWatches();
    await waitFor('relist', () => api.listRequests().length === 2);
    await watchOpen();
  });

  it('backs off and re-watches from the last resourceVersion after a dropped connection, keeping its state', async () => {
    upsert('a', 1);
    await start();
    await watchOpen();
    upsert('b', 2);
    await sees(['a:1', 'b:2']);
    const seen = api.resourceVersion;
    api.dropWatches();
    upsert('c', 3); // while disconnected: replayed from history on re-watch
    await waitFor('c replayed', () => last()?.includes('c:3'));
    assert.equal(api.watchRequests()[1]!.query.get('resourceVersion'), seen);
    assert.equal(api.listRequests().length, 1, 'a dropped watch resumes, it does not relist');
    assert.ok(changes.every((c) => c.length > 0), 'the state was never emptied');
    const warn = logs.find((l) => l.msg === 'ChaosPolicy watch failed; keeping the last state');
    assert.ok(warn && warn.stage === 'watch' && typeof warn.retryInMs === 'number', JSON.stringify(logs));
  });

  it('drops a watch whose event outgrows the size guard and resumes', async () => {
    upsert('a', 1);
    await start();
    await watchOpen();
    api.sendRaw(`{"type":"ADDED","object":{"metadata":{"name":"huge"},"x":"${'x'.repeat(3 * 1024 * 1024)}`);
    await waitFor('a second watch', () => api.watchRequests().length === 2);
    assert.ok(logs.some((l) => /larger than 2097152 bytes/.test(String(l.err))), JSON.stringify(logs.map((l) => l.err)));
    assert.deepEqual(last(), ['a:1']);
  });

  it('retries a failing first list with backoff; start() resolves after the first attempt (fail open)', async () => {
    upsert('a', 1);
    api.listStatuses.push(500, 503);
    await start();
    assert.equal(changes.length, 0, 'no objects yet');
    await sees(['a:1']);
    assert.equal(api.listRequests().length, 3);
    assert.deepEqual(logs.filter((l) => l.stage === 'list').map((l) => (l.err as string).slice(0, 8)), ['HTTP 500', 'HTTP 503']);
  });

  it('sends the bearer token and re-reads a rotated token file after a 401', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'faultline-token-'));
    try {
      const file = path.join(dir, 'token');
      await writeFile(file, 'old');
      api.token = 'old';
      upsert('a', 1);
      await start(connection({ token: new FileToken(file) }));
      await watchOpen();
      assert.ok(api.requests.every((r) => r.authorization === 'Bearer old'));
      // The kubelet rotates the token; the API server stops accepting the old one.
      await writeFile(file, 'new');
      api.token = 'new';
      api.dropWatches();
      await watchOpen();
      const auths = api.requests.map((r) => r.authorization);
      assert.deepEqual(auths.slice(-2), ['Bearer old', 'Bearer new'], 'one 401, then the re-read token (within the re-read period)');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('connects through a kubeconfig (CA file, tokenFile) and refuses a server it cannot verify', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'faultline-kc-'));
    try {
      await writeFile(path.join(dir, 'ca.crt'), api.ca);
      await writeFile(path.join(dir, 'token'), 'kc-token');
      const file = path.join(dir, 'config');
      await writeFile(file, stringify({
        clusters: [{ name: 'c', cluster: { server: api.url, 'certificate-authority': 'ca.crt' } }],
        users: [{ name: 'u', user: { tokenFile: 'token' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      }));
      api.token = 'kc-token';
      upsert('a', 1);
      await start(await kubeconfigConnection(file));
      await sees(['a:1']);
      lw!.stop();
      client!.close();

      // The system roots do not know the test CA.
      changes = [];
      await start(connection({ ca: undefined, token: staticToken('kc-token') }));
      assert.equal(changes.length, 0);
      assert.match(String(logs.find((l) => l.stage === 'list')?.err), /self-signed|unable to verify|certificate/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops: the watch is closed and nothing more is requested', async () => {
    upsert('a', 1);
    await start();
    await watchOpen();
    lw!.stop();
    await waitFor('watch closed', () => api.openWatches === 0 || false);
    const n = api.requests.length;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(api.requests.length, n);
  });
});
