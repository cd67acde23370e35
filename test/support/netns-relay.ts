// Run inside a pod's network namespace: relays UNIX sockets (which any
// namespace can reach through the file system) to TCP ports on the pod's
// loopback, so the test process reaches the proxy's admin API and Toxiproxy,
// which listen on 127.0.0.1 only.
//   netns-relay.ts <socket>=<port>...     prints "relay ready" once all listen
import { rmSync } from 'node:fs';
import net from 'node:net';

const pairs = process.argv.slice(2).map((a) => {
  const [path, port] = a.split('=') as [string, string];
  return { path, port: Number(port) };
});
await Promise.all(
  pairs.map(
    ({ path, port }) =>
      new Promise<void>((resolve, reject) => {
        rmSync(path, { force: true });
        const server = net.createServer((c) => {
          const up = net.connect(port, '127.0.0.1');
          c.pipe(up).pipe(c);
          up.on('error', () => c.destroy());
          c.on('error', () => up.destroy());
        });
        server.once('error', reject);
        server.listen(path, resolve);
      }),
  ),
);
console.log('relay ready');
