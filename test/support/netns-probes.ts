// Measurements across a simulated pod's veth, counted where they land.
import { NODE } from './netns-fixtures.ts';
import { CLIENT_IP, type SimulatedPod } from './netns-pod.ts';
import { repoRoot } from './netns-paths.ts';

export const TOOLS = [NODE, `${repoRoot}/test/support/netns-tools.ts`];

/**
 * Sends `count` UDP datagrams from the pod to the client namespace and returns
 * how many the client's kernel received, counted by an nft rule at its input
 * hook (before any socket could drop them).
 */
export async function udpDelivered(pod: SimulatedPod, count: number, port = 9999): Promise<number> {
  const ruleset = `table inet fltest {}
delete table inet fltest
table inet fltest {
	counter udp_in {}
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport ${port} counter name udp_in
	}
}
`;
  const r = await pod.execClient(['nft', '-f', '-'], { input: ruleset });
  if (r.code !== 0) throw new Error(`nft (client): ${r.stderr}`);
  const send = await pod.execPod([...TOOLS, 'udp-send', CLIENT_IP, String(port), String(count)]);
  if (send.code !== 0) throw new Error(`udp-send: ${send.stderr}`);
  const out = await pod.execClient(['nft', '--json', 'list', 'counter', 'inet', 'fltest', 'udp_in']);
  const parsed = JSON.parse(out.stdout) as { nftables: Array<{ counter?: { packets: number } }> };
  const packets = parsed.nftables.find((e) => e.counter)?.counter?.packets;
  if (packets === undefined) throw new Error(`no counter in ${out.stdout}`);
  return packets;
}

/** The port tcpGoodput blasts to (pods measuring the kernel's rate exclude it from capture). */
export const BLAST_PORT = 5001;

/**
 * TCP goodput from the pod to the client namespace, in bits per second,
 * measured at the receiver: the median of its 500 ms windows, which a stall of
 * either process on this shared machine moves far less than the mean over
 * the whole run (tcp-sink in netns-tools.ts).
 */
export async function tcpGoodput(pod: SimulatedPod, seconds: number, port = BLAST_PORT): Promise<number> {
  const sink = pod.spawnClient('tcp-sink', [...TOOLS, 'tcp-sink', String(port)]);
  const deadline = Date.now() + 10_000;
  while (!sink.stdout.includes('listening')) {
    if (!sink.running || Date.now() > deadline) throw new Error(`tcp-sink did not start: ${sink.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const blast = await pod.execPod([...TOOLS, 'tcp-blast', CLIENT_IP, String(port), String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
  if (blast.code !== 0) throw new Error(`tcp-blast: ${blast.stderr}`);
  await sink.exited;
  const { windowBytes, windowMs } = JSON.parse(sink.stdout.split('\n').find((l) => l.startsWith('{'))!) as { windowBytes: number[]; windowMs: number };
  if (windowBytes.length < 3) throw new Error(`tcp-sink saw ${windowBytes.length} whole windows of ${windowMs} ms, too few for a rate`);
  const median = [...windowBytes].sort((a, b) => a - b)[Math.floor((windowBytes.length - 1) / 2)]!;
  return (median * 8) / (windowMs / 1000);
}
