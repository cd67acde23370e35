// The one list+watch (kube/list-watch.ts) against the real kube-apiserver, as
// the webhook's cache runs it: through the webhook's client-node KubeConfig
// (kube/client-node-connection.ts, here the admin's client certificate), with
// real continue tokens, real watch events, and the bookmarks and watch ends
// the server sends on its own.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { Backoff } from '../../common/backoff.ts';
import { KubeClient } from '../../kube/client.ts';
import { connectionFromKubeConfig } from '../../kube/client-node-connection.ts';
import { ListWatch, type ChangeType } from '../../kube/list-watch.ts';
import { freshNamespace, kubectlOk, useControlPlane } from '../support/e2e-cluster.ts';

async function until(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('e2e: list+watch against kube-apiserver', function () {
  this.timeout(60_000);
  const cp = useControlPlane();
  let client: KubeClient;
  const watches: Array<ListWatch<unknown>> = [];

  before(async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(cp().kubeconfigs.admin);
    client = new KubeClient(await connectionFromKubeConfig(kc), 'faultline-webhook');
  });
  after(() => {
    for (const w of watches) w.stop();
    client?.close();
  });

  const configMap = (ns: string, name: string, color: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { color } });

  it('lists page by page, then follows creates, updates and deletes from the list resourceVersion', async () => {
    const ns = await freshNamespace(cp());
    for (const name of ['a', 'b', 'c', 'd', 'e']) await kubectlOk(cp(), 'admin', ['create', '-f', '-'], configMap(ns, name, 'red'));
    const deltas: Array<[ChangeType, string]> = [];
    const lw = new ListWatch<{ name: string; color: string | undefined }>({
      client, kind: 'ConfigMap', path: `/api/v1/namespaces/${ns}/configmaps`, log: pino({ level: 'silent' }), pageSize: 2, backoff: new Backoff(50, 500),
      project: (o) => ({ name: String(o.metadata?.name), color: (o.data as { color?: string } | undefined)?.color }),
      onDelta: (type, _ns, name) => deltas.push([type, name]),
    });
    watches.push(lw as ListWatch<unknown>);
    await lw.start();
    await lw.synced();
    // kube-root-ca.crt is there too: the namespace's own ConfigMap, published by the controller manager.
    assert.deepEqual(lw.inNamespace(ns).map((c) => c.name).filter((n) => n.length === 1).sort(), ['a', 'b', 'c', 'd', 'e']);
    assert.ok(Number(lw.resourceVersion) > 0);
    const listed = deltas.length;

    await kubectlOk(cp(), 'admin', ['-n', ns, 'patch', 'configmap', 'a', '--type=merge', '-p', '{"data":{"color":"green"}}']);
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], configMap(ns, 'f', 'blue'));
    await kubectlOk(cp(), 'admin', ['-n', ns, 'delete', 'configmap', 'b']);
    await until('three watch events', () => deltas.length === listed + 3);
    assert.deepEqual(deltas.slice(listed), [['modified', 'a'], ['added', 'f'], ['deleted', 'b']]);
    assert.deepEqual(lw.get(ns, 'a'), { name: 'a', color: 'green' });
    assert.equal(lw.get(ns, 'b'), undefined);
  });

  it('advances its resourceVersion from the server\'s bookmarks and resumes each watch the server ends, without relisting', async () => {
    const ns = await freshNamespace(cp());
    let lists = 0;
    const lw = new ListWatch({
      client, kind: 'ConfigMap', path: `/api/v1/namespaces/${ns}/configmaps`, backoff: new Backoff(50, 500),
      // The server ends each watch after 3–6 s, sending a bookmark 2 s before it does.
      watchTimeoutS: 3,
      project: (o) => o.metadata?.name,
      log: pino({ level: 'info' }, { write: (line: string) => void (/list synced/.test(line) && lists++) }),
    });
    watches.push(lw as ListWatch<unknown>);
    await lw.start();
    const listed = Number(lw.resourceVersion);
    // A write elsewhere moves the cluster's resourceVersion; no event of this namespace tells of it, only a bookmark.
    const other = await freshNamespace(cp());
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], configMap(other, 'elsewhere', 'grey'));
    const moved = Number(JSON.parse(await kubectlOk(cp(), 'admin', ['-n', other, 'get', 'configmap', 'elsewhere', '-o', 'json'])).metadata.resourceVersion);
    assert.ok(moved > listed);
    await until('a bookmark at or past the write elsewhere', () => Number(lw.resourceVersion) >= moved, 20_000);
    // Past at least one server-ended watch: still no relist, and events still arrive.
    await sleep(7_000);
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], configMap(ns, 'late', 'pink'));
    await until('the event after a resumed watch', () => lw.get(ns, 'late') === 'late');
    assert.equal(lists, 1, 'one list: every watch resumed from the resourceVersion');
  });
});
