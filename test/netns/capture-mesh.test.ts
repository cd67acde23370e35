// Faultline next to a mesh sidecar, in real namespaces: the plan the webhook
// renders for an Istio- or Linkerd-shaped pod (test/fixtures/pods/21-istio-sidecar.yaml,
// 23-linkerd-sidecar.yaml), `faultline init` writing the capture table mesh
// first, iptables-nft rules as istio-init / linkerd-init write them (REDIRECT
// mode), a stand-in mesh proxy as the mesh UID that relays each connection to
// its original destination (Envoy's passthrough from 127.0.0.6, linkerd-proxy
// from the pod IP), and `faultline sidecar` as its own UID.
// Inbound must pass the mesh first (it terminates mTLS) and then Faultline;
// outbound Faultline first and then the mesh.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { InitPlan, LiveFaultPlan } from '../../contract/plans.ts';
import { DEFAULT_PROXY_PORTS, DEFAULT_PROXY_UID } from '../../contract/pod-layout.ts';
import { loadInjectionConfig } from '../../webhook/injection-config.ts';
import { createInjector } from '../../webhook/inject.ts';
import { exec, execOk, Proc } from '../support/netns-exec.ts';
import { NODE } from '../support/netns-fixtures.ts';
import { repoRoot } from '../support/netns-paths.ts';
import { isRoot } from '../support/netns-pod.ts';

const POD = '10.216.0.2';
const CLIENT = '10.216.0.1';
const APP_UID = 1000;
const TOOL = `${repoRoot}/test/support/netns-capture-pod.ts`;
const FAULTLINE = [NODE, `${repoRoot}/bin/faultline.js`];
const far = Date.now() + 3_600_000;

/** linkerd2-proxy-init --incoming-proxy-port 4143 --outgoing-proxy-port 4140 --proxy-uid 2102 --inbound-ports-to-ignore 4190,4191,4567,4568 --outbound-ports-to-ignore 4567,4568, as iptables-save shows it. */
const LINKERD_INIT = `*nat
:PROXY_INIT_REDIRECT - [0:0]
:PROXY_INIT_OUTPUT - [0:0]
-A PREROUTING -j PROXY_INIT_REDIRECT
-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,4567,4568 -j RETURN
-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143
-A OUTPUT -j PROXY_INIT_OUTPUT
-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -j RETURN
-A PROXY_INIT_OUTPUT -o lo -j RETURN
-A PROXY_INIT_OUTPUT -p tcp -m multiport --dports 4567,4568 -j RETURN
-A PROXY_INIT_OUTPUT -p tcp -j REDIRECT --to-ports 4140
COMMIT
`;

/** istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -b '*' -d 15090,15021,15020, as iptables-save shows it. */
const ISTIO_INIT = `*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
`;

const MESHES = [
  { kind: 'istio', uid: 1337, fixture: '21-istio-sidecar.yaml', rules: ISTIO_INIT, ports: ['15006', '15001'], source: ['127.0.0.6'] },
  { kind: 'linkerd', uid: 2102, fixture: '23-linkerd-sidecar.yaml', rules: LINKERD_INIT, ports: ['4143', '4140'], source: [] },
] as const;

for (const m of MESHES) describe(`netns: capture next to ${m.kind}'s sidecar (inbound mesh first, outbound Faultline first)`, function () {
  const MESH_UID = m.uid;
  this.timeout(120_000);
  const id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  const podNs = `fl-mesh-${id}-${m.kind.slice(0, 2)}-pod`;
  const cliNs = `fl-mesh-${id}-${m.kind.slice(0, 2)}-cli`;
  let dir: string;
  let plan: InitPlan;
  const procs: Proc[] = [];
  const mesh = (): Proc => procs.find((p) => p.name === 'mesh')!;
  const inPod = (argv: string[], uid?: number) =>
    exec(['ip', 'netns', 'exec', podNs, ...(uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']), ...argv], { timeoutMs: 20_000 });
  const fmt = ['-s', '-m', '5', '-o', '-', '-w', '\\n%{http_code}'];
  const start = async (name: string, argv: string[], ready: () => boolean | Promise<boolean>, env: NodeJS.ProcessEnv = {}): Promise<void> => {
    const p = new Proc(name, argv, { PATH: process.env.PATH, ...env });
    procs.push(p);
    const until = Date.now() + 30_000;
    while (!(await ready())) {
      if (!p.running || Date.now() > until) throw new Error(`${name} did not start: ${p.stdout}${p.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const asUid = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];

  before(async function () {
    if (!isRoot()) return this.skip();
    const pod = parse(readFileSync(`${repoRoot}/test/fixtures/pods/${m.fixture}`, 'utf8')) as V1Pod;
    const result = createInjector(loadInjectionConfig({}, {})).render(pod, { name: 'shop' });
    assert.ok(result.injected, result.injected ? '' : result.message);
    plan = result.plan;
    dir = mkdtempSync(join(tmpdir(), 'faultline-mesh-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
    const live: LiveFaultPlan = {
      http: [
        { chaosId: 'shop/in', expiresAt: far, name: 'in', direction: 'inbound', match: { port: 8080, path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } },
        { chaosId: 'shop/out', expiresAt: far, name: 'out', direction: 'outbound', match: { host: CLIENT, port: 7000, path: { prefix: '/faulted' } }, abort: { status: 419, percent: 100 } },
      ],
      tcp: [],
    };
    writeFileSync(join(dir, 'live.json'), JSON.stringify(live));
    chmodSync(join(dir, 'live.json'), 0o644);

    for (const ns of [podNs, cliNs]) await execOk(['ip', 'netns', 'add', ns]);
    await execOk(['ip', 'link', 'add', 'eth0', 'netns', podNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', cliNs]);
    for (const [ns, v4] of [[podNs, POD], [cliNs, CLIENT]] as const) {
      for (const a of [['link', 'set', 'lo', 'up'], ['link', 'set', 'eth0', 'up'], ['addr', 'add', `${v4}/24`, 'dev', 'eth0']]) await execOk(['ip', 'netns', 'exec', ns, 'ip', ...a]);
    }
    // faultline-init first, as the injected pod runs it; the mesh's init rules next to its table.
    await execOk(['ip', 'netns', 'exec', podNs, ...FAULTLINE, 'init', '--plan-file', join(dir, 'plan.json'), '--run-dir', join(dir, 'run'), '--time-dir', join(dir, 'time')]);
    await execOk(['ip', 'netns', 'exec', podNs, 'iptables-nft-restore', '--noflush'], { input: m.rules });

    await start('app', ['ip', 'netns', 'exec', podNs, ...asUid(APP_UID), NODE, `${repoRoot}/test/support/netns-app.ts`, '8080'], async () => (await inPod(['curl', '-sf', 'http://127.0.0.1:8080/x'])).code === 0);
    await start('mesh', ['ip', 'netns', 'exec', podNs, ...asUid(MESH_UID), NODE, TOOL, 'mesh', ...m.ports, ...m.source], () => mesh().stdout.includes('mesh ready'));
    await start(
      'faultline-proxy',
      ['ip', 'netns', 'exec', podNs, ...asUid(DEFAULT_PROXY_UID), ...FAULTLINE, 'sidecar', '--plan-file', join(dir, 'live.json'), '--toxiproxy-bin', join(dir, 'none'),
        '--handoff-file', join(dir, 'none.json'), '--faketime-file', join(dir, 'faketime.rc')],
      async () => (await inPod(['curl', '-sf', `http://127.0.0.1:${DEFAULT_PROXY_PORTS.health}/healthz/ready`])).code === 0,
      { FAULTLINE_PLAN: JSON.stringify(plan), POD_IP: POD, HOST_IP: '10.216.0.9' },
    );
    await start('upstream', ['ip', 'netns', 'exec', cliNs, NODE, '-e', "require('http').createServer((q,s)=>s.end('upstream '+q.url)).listen(7000,()=>console.log('up'))"], () => procs.at(-1)!.stdout.includes('up'));
  });

  after(async () => {
    for (const p of procs.reverse()) await p.stop();
    for (const ns of [podNs, cliNs]) await exec(['ip', 'netns', 'del', ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    const left = (await exec(['ip', 'netns', 'list'])).stdout;
    assert.ok(!left.includes(podNs) && !left.includes(cliNs), 'netns left behind');
    for (const p of procs) assert.ok(!p.running, `${p.name} still running`);
  });

  it(`the webhook recognised the ${m.kind} sidecar, and init wrote the capture table mesh first`, async () => {
    assert.deepEqual(plan.wiring.capture?.mesh, { kind: m.kind, uid: MESH_UID });
    const table = (await inPod(['nft', 'list', 'table', 'inet', 'faultline_capture'])).stdout;
    assert.doesNotMatch(table.slice(table.indexOf('chain prerouting'), table.indexOf('chain output')), /redirect/);
    assert.match(table, new RegExp(`meta skuid ${MESH_UID} oifname "lo" jump mesh_inbound`));
  });

  it('inbound: the mesh takes the connection first, then Faultline faults the plaintext and the app sees the pod IP', async () => {
    const seen = () => mesh().stdout.split('\n').filter((l) => l === `mesh inbound ${POD}:8080`).length;
    const before = seen();
    assert.match((await exec(['ip', 'netns', 'exec', cliNs, 'curl', ...fmt, `http://${POD}:8080/faulted`])).stdout, /\n418$/);
    assert.equal((await exec(['ip', 'netns', 'exec', cliNs, 'curl', ...fmt, `http://${POD}:8080/peer`])).stdout, `app 8080 from ${POD}\n200`);
    assert.equal(seen(), before + 2, 'both connections went through the mesh');
  });

  it('outbound: Faultline faults the app\'s call first, and its own connection still goes through the mesh', async () => {
    const seen = () => mesh().stdout.split('\n').filter((l) => l === `mesh outbound ${CLIENT}:7000`).length;
    const before = seen();
    assert.match((await inPod(['curl', ...fmt, `http://${CLIENT}:7000/faulted`], APP_UID)).stdout, /\n419$/);
    assert.equal(seen(), before, 'an aborted request never leaves the pod');
    assert.equal((await inPod(['curl', ...fmt, `http://${CLIENT}:7000/ok`], APP_UID)).stdout, 'upstream /ok\n200');
    assert.equal(seen(), before + 1, 'Faultline\'s connection to the upstream went through the mesh');
  });
});
