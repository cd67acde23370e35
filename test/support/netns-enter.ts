// Lets the test process serve an app inside a pod's network namespace while it
// stays in its own: setns(2) moves only the calling thread, and a listening
// socket belongs for good to the namespace it was created in. Node creates a
// server's socket synchronously in listen() when no host is given, so the main
// thread enters the namespace, listens, and is back before any other JS runs.
// (Client sockets are created a tick later, so they cannot be made this way.)
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type net from 'node:net';

const CLONE_NEWNET = 0x40000000;

let native: { setns: (fd: number, nstype: number) => number; errno: () => number } | undefined;

function load(): NonNullable<typeof native> {
  if (native) return native;
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const setns = koffi.load(null).func('int setns(int fd, int nstype)') as unknown as (fd: number, nstype: number) => number;
  native = { setns, errno: () => koffi.errno() };
  return native;
}

/** Runs `fn` (synchronous) with the calling thread in the named namespace (/run/netns/<ns>). */
export function inNetns<T>(ns: string, fn: () => T): T {
  const { setns, errno } = load();
  const target = openSync(`/run/netns/${ns}`, 'r');
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    if (setns(target, CLONE_NEWNET) !== 0) throw new Error(`setns into ${ns}: errno ${errno()}`);
    try {
      return fn();
    } finally {
      // Staying in the pod's namespace would move every later socket of the test process there.
      if (setns(home, CLONE_NEWNET) !== 0) {
        process.stderr.write(`setns back out of ${ns} failed (errno ${errno()}); the test process cannot go on\n`);
        process.exit(70);
      }
    }
  } finally {
    closeSync(target);
    closeSync(home);
  }
}

/** Binds `server` to `port` (default: a free one) on every address of the namespace; resolves with the port. */
export async function listenInNetns(ns: string, server: net.Server, port = 0): Promise<number> {
  const listening = new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  inNetns(ns, () => server.listen(port));
  await listening;
  return (server.address() as net.AddressInfo).port;
}
