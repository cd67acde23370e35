// Cost of reading SO_ORIGINAL_DST (koffi → libc getsockopt) per connection,
// on real nft-redirected connections in a throwaway network namespace. Needs root.
// Prints one JSON object: per-call µs of originalDestination() beside a native
// call Node makes on every socket anyway (getsockname through libuv), and the
// whole connect/accept/answer/close cycle it sits in.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { exec, execOk } from '../test/support/netns-exec.ts';

const COUNT = Number(process.env.BENCH_CONNECTIONS ?? 5000);
const root = new URL('..', import.meta.url).pathname;
const node = join(root, 'node_modules/.bin/node');
const ns = `fl-odb-${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;

await execOk(['ip', 'netns', 'add', ns]);
try {
  const inNs = (argv: string[], input?: string) => execOk(['ip', 'netns', 'exec', ns, ...argv], input === undefined ? {} : { input });
  await inNs(['ip', 'link', 'set', 'lo', 'up']);
  await inNs(['ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
  await inNs(['ip', 'link', 'set', 'd0', 'up']);
  await inNs(['ip', 'link', 'set', 'd1', 'up']);
  await inNs(['ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'd0']);
  await inNs(['nft', '-f', '-'], 'table inet t {\n  chain out {\n    type nat hook output priority -100;\n    tcp dport 7000 redirect to :15001\n  }\n}\n');
  const r = await inNs([node, join(root, 'test/support/netns-original-dst.ts'), 'bench', '15001', '10.99.0.2:7000', String(COUNT)]);
  const result = JSON.parse(r.stdout) as Record<string, unknown>;
  console.log(JSON.stringify({ bench: 'original-destination', ...result }, null, 2));
} finally {
  await exec(['ip', 'netns', 'del', ns]);
}
