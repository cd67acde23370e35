// `faultline up --api-only` (npm start without a node; test/node runs the
// walkthrough on a real one): the printed kubeconfig works,
// the walkthrough's first steps inject, and Ctrl-C cleans everything up.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinaries } from '../../controlplane/binaries.ts';
import { runKubectl, type KubectlTarget } from '../../controlplane/kubectl.ts';
import { FAIL_OPEN_CONTAINER_NAME, INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';

const UP = fileURLToPath(new URL('../../controlplane/up.ts', import.meta.url));

describe('e2e: faultline up', function () {
  this.timeout(180_000);
  let up: ChildProcess | undefined;

  afterEach(() => {
    up?.kill('SIGKILL');
  });

  it('prints a working kubeconfig, injects in the walkthrough namespace, and cleans up on Ctrl-C', async () => {
    const child = spawn(process.execPath, [UP, '--quiet', '--api-only'], { stdio: ['ignore', 'pipe', 'pipe'] });
    up = child;
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const kubeconfig = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      void exited.then((code) => reject(new Error(`faultline up exited (${code}) before printing a kubeconfig:\n${stderr}`)));
    });
    const dir = path.dirname(kubeconfig);
    const kubectl: KubectlTarget = { binary: (await ensureBinaries()).kubectl, kubeconfig, cacheDir: path.join(dir, 'kubectl-cache') };
    const run = async (...args: string[]) => {
      const res = await runKubectl(kubectl, args);
      assert.equal(res.code, 0, `kubectl ${args.join(' ')}: ${res.stderr}`);
      return res.stdout;
    };

    await run('create', 'namespace', 'shop');
    await run('label', 'namespace', 'shop', 'faultline.dev/chaos=enabled');
    // The namespace's default ServiceAccount appears asynchronously, as in a real cluster.
    for (let i = 0; i < 100 && (await runKubectl(kubectl, ['get', 'sa', 'default', '-n', 'shop'])).code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await run('run', 'web', '--image=nginx', '-n', 'shop');
    const names = await run('get', 'pod', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.initContainers[*].name}');
    assert.equal(names, `${INIT_CONTAINER_NAME} ${FAIL_OPEN_CONTAINER_NAME} ${PROXY_CONTAINER_NAME}`);

    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 0, `exit status; stderr:\n${stderr}`);
    assert.ok(!existsSync(dir), `${dir} is removed`);
  });
});
