// The walkthrough `faultline up` prints, as data: the same steps are printed
// as shell commands for a person and run by test/node/walkthrough.test.ts, so
// what the README and `npm start` show is what the tests prove works.
// The demo app: HTTP/1.1 on 8080 (/healthz), h2c on 8081, and curl for the client side.
import { DEMO_IMAGE } from '../common/images.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../policies/wellknown.ts';
import { stringify } from 'yaml';

export type WalkthroughUser = 'admin' | 'alice';

export const DEMO_NAMESPACE = 'shop';
/** The policy's delay: long enough to see by eye, under the demo tenant's 2 s limit. */
export const DEMO_DELAY_MS = 500;

export interface Step {
  /** A `#` comment printed above the command. */
  comment?: string;
  user: WalkthroughUser;
  args: string[];
  /** stdin (printed as a here-document). */
  input?: string;
  /**
   * What the test asserts about this step: `ok` exits 0; `denied` exits non-zero;
   * `fast`/`delayed` are curl timings without / with the policy's delay.
   */
  expect: 'ok' | 'denied' | 'fast' | 'delayed';
}

/** Creates the demo tenant if the CRD is served; returns a warning instead of failing. */
export async function createDemoTenant(kubectl: (args: string[], input?: string) => Promise<{ code: number; stderr: string }>): Promise<string | undefined> {
  const crd = await kubectl(['get', 'crd', `chaostenants.${API_GROUP_VERSION.split('/')[0]}`]);
  if (crd.code !== 0) return 'the ChaosTenant CRD is not installed; skipped the demo tenant';
  const res = await kubectl(['create', '-f', '-'], JSON.stringify(demoTenant()));
  return res.code === 0 ? undefined : `the demo ChaosTenant "shop" was not created: ${res.stderr.trim()}`;
}

/** The demo tenant: what `shop` may run, so the walkthrough's denial has something to cite. */
export function demoTenant(): object {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name: 'shop' },
    spec: {
      namespaces: [DEMO_NAMESPACE],
      subjects: [{ kind: 'Group', name: 'tenant-shop' }],
      allow: {
        kinds: ['http.delay', 'http.abort', 'tcp.latency'],
        limits: { maxDelay: '2s', maxDuration: '30m', maxPodPercent: 100 },
      },
    },
  };
}

/** Deployment + Service "web" of the demo app in `namespace`, as YAML. */
export function demoApp(namespace = DEMO_NAMESPACE): string {
  const labels = { app: 'web' };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'web',
              image: DEMO_IMAGE,
              ports: [
                { name: 'http', containerPort: 8080 },
                { name: 'h2c', containerPort: 8081 },
              ],
              // The kubelet probes the very port the walkthrough faults: the proxy
              // captures every port and lets kubelet probes through unfaulted.
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 3 },
            },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace },
    spec: {
      selector: labels,
      ports: [
        { name: 'http', port: 80, targetPort: 8080 },
        { name: 'h2c', port: 81, targetPort: 8081 },
      ],
    },
  };
  return `${stringify(deployment)}---\n${stringify(service)}`;
}

function policy(name: string, delay: string): string {
  return stringify({
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosPolicy',
    metadata: { name },
    spec: { selector: { matchLabels: { app: 'web' } }, mode: { type: 'all' }, duration: '10m', http: [{ delay: { fixed: delay } }] },
  });
}

const CURL = ['exec', 'client', '--', 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_total}s\\n', `http://web.${DEMO_NAMESPACE}/`];

/** The steps, in order, for a cluster with a node. */
export function walkthroughSteps(): Step[] {
  const ns = DEMO_NAMESPACE;
  return [
    { comment: '1. A chaos namespace with the demo app (Deployment + Service)', user: 'admin', args: ['create', 'namespace', ns], expect: 'ok' },
    { user: 'admin', args: ['label', 'namespace', ns, `${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED}`], expect: 'ok' },
    { user: 'admin', args: ['apply', '-f', '-'], input: demoApp(), expect: 'ok' },
    { user: 'admin', args: ['rollout', 'status', 'deployment/web', '-n', ns, '--timeout=180s'], expect: 'ok' },
    {
      comment: "Running, with Faultline's init and proxy containers next to the app (READY 2/2)",
      user: 'admin',
      args: ['get', 'pods', '-n', ns, '-l', 'app=web', '-o', 'wide'],
      expect: 'ok',
    },
    {
      comment: '2. A client pod outside the chaos namespace; curl through the Service name',
      user: 'admin',
      args: ['run', 'client', '--image', DEMO_IMAGE, '--restart=Never', '--command', '--', 'sleep', '3600'],
      expect: 'ok',
    },
    { user: 'admin', args: ['wait', '--for=condition=Ready', 'pod/client', '--timeout=120s'], expect: 'ok' },
    { user: 'admin', args: CURL, expect: 'fast' },
    {
      comment: `3. As tenant alice, a ${DEMO_DELAY_MS}ms delay on every web pod (the tenant allows up to 2s)`,
      user: 'admin',
      args: ['create', 'rolebinding', 'alice-edit', '--clusterrole=edit', '--user=alice', '-n', ns],
      expect: 'ok',
    },
    { user: 'alice', args: ['apply', '-n', ns, '-f', '-'], input: policy('web-latency', `${DEMO_DELAY_MS}ms`), expect: 'ok' },
    { user: 'admin', args: CURL, expect: 'delayed' },
    {
      comment: '4. More than the tenant allows is denied, naming tenant, field and limit',
      user: 'alice',
      args: ['apply', '-n', ns, '-f', '-'],
      input: policy('web-stall', '5s'),
      expect: 'denied',
    },
    { comment: '5. Delete the policy: the fault is gone', user: 'alice', args: ['delete', 'chaospolicy', 'web-latency', '-n', ns], expect: 'ok' },
    { user: 'admin', args: CURL, expect: 'fast' },
  ];
}

/** The steps as shell commands, `kubectl` for admin and `kubectl --kubeconfig <alice>` for alice. */
export function renderSteps(steps: readonly Step[], kubeconfigs: Record<WalkthroughUser, string>): string {
  const lines: string[] = [];
  for (const step of steps) {
    if (step.comment) lines.push('', `  # ${step.comment}`);
    const who = step.user === 'admin' ? 'kubectl' : `kubectl --kubeconfig ${kubeconfigs[step.user]}`;
    const args = step.args.map(shellWord).join(' ');
    // Flush left: a here-document ends only at an unindented EOF line.
    lines.push(step.input ? `  ${who} ${args} <<'EOF'\n${step.input.trimEnd()}\nEOF` : `  ${who} ${args}`);
  }
  return lines.join('\n');
}

function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}
