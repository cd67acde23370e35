// The webhook's informer cache, against the HTTPS list/watch emulator: paged
// list, projection, watch events, resume after a dropped watch, and a relist
// when the resourceVersion was compacted away (410 Gone).
import assert from 'node:assert/strict';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Reflector, type ChangeType, type ListPage } from '../../webhook/cache/reflector.ts';
import { FakeKubeApiserver } from '../support/sidecar-kube-apiserver.ts';

const COLLECTION = '/apis/example.dev/v1/things';

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('webhook: Reflector (list + watch cache)', function () {
  this.timeout(20_000);
  let api: FakeKubeApiserver;
  let reflector: Reflector<{ name: string; color: unknown }> | undefined;
  const changes: Array<[ChangeType, string]> = [];

  beforeEach(async () => {
    api = await FakeKubeApiserver.start(COLLECTION);
    changes.length = 0;
  });
  afterEach(async () => {
    reflector?.stop();
    await api.close();
  });

  function start(): Reflector<{ name: string; color: unknown }> {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'fake', server: api.url, caData: api.ca.toString('base64') }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
      currentContext: 'c',
    });
    const list = (page: { limit: number; _continue?: string }): Promise<ListPage> =>
      new Promise((resolve, reject) => {
        const query = new URLSearchParams({ limit: String(page.limit), ...(page._continue ? { continue: page._continue } : {}) });
        https.get(`${api.url}${COLLECTION}?${query}`, { ca: api.ca }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as ListPage) : reject(new Error(`HTTP ${res.statusCode}`))));
        }).on('error', reject);
      });
    reflector = new Reflector({
      name: 'things',
      kubeConfig,
      path: COLLECTION,
      list,
      // Only what callers read is kept: managedFields and the rest are dropped on arrival.
      project: (raw) => ({ name: raw.metadata?.name ?? '', color: raw.color }),
      log: pino({ level: 'silent' }),
      onChange: (type, _ns, name) => changes.push([type, name]),
    });
    reflector.start();
    return reflector;
  }

  it('syncs from the list, keeps only the projection, and follows watch events', async () => {
    api.upsert('a', { color: 'red' });
    api.upsert('b', { color: 'blue' });
    const r = start();
    await r.synced();
    assert.deepEqual(r.all().sort((x, y) => x.name.localeCompare(y.name)), [{ name: 'a', color: 'red' }, { name: 'b', color: 'blue' }]);
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
    const r = start();
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
    const r = start();
    await r.synced();
    await until('the watch', () => api.openWatches === 1);
    api.dropWatches();
    api.upsertUnseen('a', { color: 'white' }); // a change no watch will replay: history compacted
    await until('the relist', () => r.get('', 'a')?.color === 'white');
    assert.equal(api.listRequests().length, 2);
    assert.deepEqual(changes.slice(2), [['modified', 'a']]);
    assert.deepEqual(r.all().map((t) => t.name).sort(), ['a', 'b']);
  });
});
