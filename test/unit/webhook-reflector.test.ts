// The webhook's informer cache — kube/list-watch.ts reached through the
// webhook's client-node KubeConfig (kube/client-node-connection.ts) — against
// the HTTPS list/watch emulator: paged list, projection, per-object changes,
// resume after a dropped watch, and a relist when the resourceVersion was
// compacted away (410 Gone) reporting what changed meanwhile.
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Backoff } from '../../common/backoff.ts';
import { KubeClient } from '../../kube/client.ts';
import { connectionFromKubeConfig } from '../../kube/client-node-connection.ts';
import { diffStores, ListWatch, type ChangeType } from '../../kube/list-watch.ts';
import { FakeKubeApiserver } from '../support/sidecar-kube-apiserver.ts';

const COLLECTION = '/apis/example.dev/v1/things';

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

type Thing = { name: string; color: unknown };

describe('webhook: cache list+watch (kube/list-watch.ts through the webhook\'s KubeConfig)', function () {
  this.timeout(20_000);
  let api: FakeKubeApiserver;
  let reflector: ListWatch<Thing> | undefined;
  let client: KubeClient | undefined;
  const changes: Array<[ChangeType, string]> = [];

  beforeEach(async () => {
    api = await FakeKubeApiserver.start(COLLECTION);
    changes.length = 0;
  });
  afterEach(async () => {
    reflector?.stop();
    client?.close();
    reflector = undefined;
    client = undefined;
    await api.close();
  });

  function kubeConfig(user: { token?: string } = { token: 't' }): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: api.url, caData: api.ca.toString('base64') }],
      users: [{ name: 'u', ...user }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    return kc;
  }

  async function start(opts: { pageSize?: number } = {}): Promise<ListWatch<Thing>> {
    client = new KubeClient(await connectionFromKubeConfig(kubeConfig()), 'faultline-webhook');
    reflector = new ListWatch<Thing>({
      client,
      kind: 'Thing',
      path: COLLECTION,
      // Only what callers read is kept: managedFields and the rest are dropped on arrival.
      project: (raw) => ({ name: raw.metadata?.name ?? '', color: raw.color }),
      log: pino({ level: 'silent' }),
      onDelta: (type, _ns, name) => changes.push([type, name]),
      backoff: new Backoff(20, 100),
      ...opts,
    });
    void reflector.start();
    return reflector;
  }

  it('syncs from the list, keeps only the projection, and follows watch events', async () => {
    api.upsert('a', { color: 'red' });
    api.upsert('b', { color: 'blue' });
    const r = await start();
    await r.synced();
    assert.deepEqual(r.all().sort((x: Thing, y: Thing) => x.name.localeCompare(y.name)), [{ name: 'a', color: 'red' }, { name: 'b', color: 'blue' }]);
    assert.deepEqual(changes, [['added', 'a'], ['added', 'b']]);
    await until('the watch', () => api.openWatches === 1);

    api.upsert('a', { color: 'green' });
    api.upsert('c', { color: 'black' });
    api.remove('b');
    await until('three events', () => changes.length === 5);
    assert.deepEqual(changes.slice(2), [['modified', 'a'], ['added', 'c'], ['deleted', 'b']]);
    assert.deepEqual(r.get('', 'a'), { name: 'a', color: 'green' });
    assert.equal(r.get('', 'b'), undefined);
    assert.deepEqual(r.inNamespace('').map((t) => t.name).sort(), ['a', 'c']);
  });

  it('resumes a dropped watch from the last resourceVersion without relisting', async () => {
    api.upsert('a');
    const r = await start();
    await r.synced();
    await until('the watch', () => api.openWatches === 1);
    api.dropWatches();
    api.upsert('b'); // while no watch is open: replayed from history on resume
    await until('the missed event', () => r.get('', 'b') !== undefined);
    assert.equal(api.listRequests().length, 1, 'no relist');
    assert.ok(Number(api.watchRequests().at(-1)!.query.get('resourceVersion')) > 0);
  });

  it('relists when its resourceVersion was compacted away (410 Gone), reporting what changed meanwhile', async () => {
    api.upsert('a', { color: 'red' });
    api.upsert('b');
    const r = await start();
    await r.synced();
    await until('the watch', () => api.openWatches === 1);
    api.dropWatches();
    api.upsertUnseen('a', { color: 'white' }); // a change no watch will replay: history compacted
    await until('the relist', () => r.get('', 'a')?.color === 'white');
    assert.equal(api.listRequests().length, 2);
    assert.deepEqual(changes.slice(2), [['modified', 'a']]);
    assert.deepEqual(r.all().map((t) => t.name).sort(), ['a', 'b']);
  });

  it('keeps objects by namespace and name, and reports a relist\'s deletions as well as its changes', async () => {
    api.upsert('a', { metadata: { namespace: 'shop' }, color: 'red' });
    api.upsert('b', { metadata: { namespace: 'shop' } });
    api.upsert('c', { metadata: { namespace: 'bank' } });
    const r = await start({ pageSize: 2 });
    await r.synced();
    assert.deepEqual(r.inNamespace('shop').map((t) => t.name).sort(), ['a', 'b']);
    assert.deepEqual(r.inNamespace('bank').map((t) => t.name), ['c']);
    assert.equal(r.get('bank', 'a'), undefined);
    assert.equal(r.get('shop', 'a')?.color, 'red');
    assert.deepEqual(api.listRequests().map((q) => q.query.get('limit')), ['2', '2']);
    await until('the watch', () => api.openWatches === 1);

    api.dropWatches();
    api.remove('c');
    api.upsertUnseen('a', { metadata: { namespace: 'shop' }, color: 'white' }); // compacts: the deletion is never replayed
    await until('the relist', () => r.get('bank', 'c') === undefined);
    assert.deepEqual(changes.slice(3).sort(), [['deleted', 'c'], ['modified', 'a']]);
    assert.deepEqual(r.inNamespace('bank'), []);
  });

  it('authenticates with the kubeconfig\'s token and names itself faultline-webhook', async () => {
    api.token = 't';
    api.upsert('a');
    const r = await start();
    await r.synced();
    await until('the watch', () => api.openWatches === 1);
    assert.ok(api.requests.length >= 2 && api.requests.every((q) => q.authorization === 'Bearer t'), JSON.stringify(api.requests.map((q) => q.authorization)));
    assert.ok(api.requests.every((q) => /^faultline-webhook\//.test(q.userAgent ?? '')), JSON.stringify(api.requests.map((q) => q.userAgent)));
  });

  it('synced() waits for a first list that succeeds, through failures and backoff', async () => {
    api.upsert('a');
    api.listStatuses.push(500, 503);
    const r = await start();
    let synced = false;
    void r.synced().then(() => (synced = true));
    await until('two failed lists', () => api.listRequests().length >= 2);
    assert.equal(synced, false);
    await r.synced();
    assert.deepEqual(r.all().map((t) => t.name), ['a']);
    assert.equal(api.listRequests().length, 3);
  });

  it('refuses a kubeconfig it cannot honour rather than dropping part of it', async () => {
    const kc = (server: string, user: Record<string, unknown>): KubeConfig => {
      const k = new KubeConfig();
      k.loadFromOptions({ clusters: [{ name: 'x', server }], users: [{ name: 'u', ...user }], contexts: [{ name: 'c', cluster: 'x', user: 'u' }], currentContext: 'c' });
      return k;
    };
    await assert.rejects(connectionFromKubeConfig(kc('http://127.0.0.1:8080', {})), /is not https/);
    await assert.rejects(connectionFromKubeConfig(kc(api.url, { username: 'u', password: 'p' })), /basic auth and impersonation are not supported/);
    const conn = await connectionFromKubeConfig(kubeConfig());
    assert.equal(conn.server.href, `${api.url}/`);
    assert.equal(await conn.token?.get(), 't');
    assert.deepEqual(conn.ca, api.ca);
  });
});

describe('kube: diffStores (what a relist changed)', () => {
  const store = (entries: Array<[string, string, string]>) => {
    const m = new Map<string, Map<string, { rv: string; value: null }>>();
    for (const [ns, name, rv] of entries) m.set(ns, (m.get(ns) ?? new Map()).set(name, { rv, value: null }));
    return m;
  };

  it('adds, modifies by resourceVersion, deletes, and tells namespaces apart', () => {
    const before = store([['a', 'x', '1'], ['a', 'y', '2'], ['b', 'x', '3']]);
    const after = store([['a', 'x', '1'], ['a', 'y', '5'], ['c', 'x', '6']]);
    assert.deepEqual(diffStores(before, after), [['modified', 'a', 'y'], ['added', 'c', 'x'], ['deleted', 'b', 'x']]);
    assert.deepEqual(diffStores(after, after), []);
  });
});
