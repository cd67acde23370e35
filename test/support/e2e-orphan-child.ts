// Child process for the "no orphans" e2e test: starts a control plane, prints
// its dir and PIDs as one JSON line, then waits to be killed.
import { startControlPlane } from '../../controlplane/index.ts';

const cp = await startControlPlane({ faultline: process.argv[2] === 'with-webhook', progress: () => undefined });
process.stdout.write(`${JSON.stringify({ dir: cp.dir, pids: cp.pids })}\n`);
setInterval(() => undefined, 1 << 30);
