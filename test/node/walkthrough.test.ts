// The walkthrough `npm start` prints (and the README shows) runs for real:
// every step through kubectl as the printed user, with its expected outcome;
// the fault is seen from a client pod through the Service name and is gone
// once the policy is deleted.
import assert from 'node:assert/strict';
import { createDemoTenant, DEMO_DELAY_MS, walkthroughSteps, type Step } from '../../cli/walkthrough.ts';
import type { ControlPlane } from '../../controlplane/index.ts';
import { eventually, nodeCluster } from '../support/node-cluster.ts';

/** "200 0.512345s" → [200, 512]. */
function curlResult(stdout: string): [number, number] {
  const m = /^(\d{3}) ([\d.]+)s$/.exec(stdout.trim());
  if (!m) throw new Error(`unexpected curl output: ${JSON.stringify(stdout)}`);
  return [Number(m[1]), Number(m[2]) * 1000];
}

describe('node: the walkthrough', function () {
  this.timeout(300_000);
  let cp: ControlPlane;

  before(async function () {
    cp = await nodeCluster();
    // As `npm start` does before printing the walkthrough.
    assert.equal(await createDemoTenant((args, input) => cp.kubectl('admin', args, input ? { input } : {})), undefined);
  });

  const run = (step: Step) => cp.kubectl(step.user, step.args, { ...(step.input ? { input: step.input } : {}), timeoutMs: 200_000 });

  for (const [i, step] of walkthroughSteps().entries()) {
    it(`step ${i + 1}: ${step.user === 'alice' ? 'alice: ' : ''}kubectl ${step.args.slice(0, 3).join(' ')} → ${step.expect}`, async () => {
      if (step.expect === 'ok' || step.expect === 'denied') {
        const r = await run(step);
        if (step.expect === 'ok') assert.equal(r.code, 0, r.stderr);
        else {
          assert.notEqual(r.code, 0, r.stdout);
          // The denial names tenant, field and limit.
          assert.match(r.stderr, /tenant "shop"/);
          assert.match(r.stderr, /spec\.http\[0\]\.delay\.fixed/);
          assert.match(r.stderr, /2s/);
        }
        return;
      }
      // A policy reaches the proxy within a second or so; poll a bounded number of requests.
      const want = step.expect;
      await eventually(`curl to be ${want}`, 30_000, async () => {
        const r = await run(step);
        if (r.code !== 0) return `curl exit ${r.code}: ${r.stderr.trim()}`;
        const [status, ms] = curlResult(r.stdout);
        if (status !== 200) return `HTTP ${status}`;
        const delayed = ms >= DEMO_DELAY_MS * 0.9;
        return delayed === (want === 'delayed') ? true : `${ms.toFixed(0)} ms`;
      });
    });
  }

  it('shows Running pods with Faultline\'s init done and proxy + app Ready', async () => {
    const pods = JSON.parse((await cp.kubectl('admin', ['get', 'pods', '-n', 'shop', '-l', 'app=web', '-o', 'json'])).stdout) as {
      items: Array<{ status: { phase: string; initContainerStatuses: Array<{ name: string; ready: boolean; state: Record<string, { exitCode?: number }> }>; containerStatuses: Array<{ name: string; ready: boolean }> } }>;
    };
    assert.equal(pods.items.length, 1);
    const st = pods.items[0]!.status;
    assert.equal(st.phase, 'Running');
    const init = st.initContainerStatuses.find((c) => c.name === 'faultline-init')!;
    assert.equal(init.state.terminated?.exitCode, 0);
    assert.equal(st.initContainerStatuses.find((c) => c.name === 'faultline-proxy')?.ready, true);
    assert.ok(st.containerStatuses.every((c) => c.ready));
  });
});
