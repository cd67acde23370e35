// The reaper's way to tear a node down after its owner died hard:
//   node controlplane/node/teardown-cli.ts <dir>/node/state.json
// Same teardown as stop(), with processes stopped by their recorded pids.
import { readState, stopByPid, teardownNode } from './teardown.ts';

const stateFile = process.argv[2];
if (!stateFile) {
  console.error('usage: teardown-cli.ts <state.json>');
  process.exit(2);
}
const state = await readState(stateFile);
const started = Date.now();
for (const note of await teardownNode(state, stopByPid(state))) console.log(`teardown: ${note}`);
console.log(`teardown: done in ${Date.now() - started} ms`);
