// Child process for the node suite's SIGKILL test: starts a cluster with a
// node, runs one pod (so there are containers, shims, mounts, a netns and a
// veth to leave behind), prints what to check as one JSON line, then waits to
// be killed.
import { NODE_IMAGES } from '../../cli/commands/up.ts';
import { DEMO_IMAGE } from '../../common/images.ts';
import { startControlPlane } from '../../controlplane/index.ts';

const cp = await startControlPlane({ node: { images: NODE_IMAGES }, progress: () => undefined, readyTimeoutMs: 180_000 });
const run = await cp.kubectl('admin', ['run', 'victim', '--image', DEMO_IMAGE, '--restart=Never', '--command', '--', 'sleep', '600']);
const ready = run.code === 0 ? await cp.kubectl('admin', ['wait', '--for=condition=Ready', 'pod/victim', '--timeout=120s'], { timeoutMs: 130_000 }) : run;
process.stdout.write(`${JSON.stringify({ dir: cp.dir, layout: cp.node!.layout, pids: cp.pids, podReady: ready.code === 0 ? true : ready.stderr })}\n`);
setInterval(() => undefined, 1 << 30);
