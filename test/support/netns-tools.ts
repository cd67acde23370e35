// Traffic tools run inside the test namespaces (as separate processes, since
// a process cannot switch network namespace itself):
//   udp-send <host> <port> <count>      send <count> 64-byte datagrams, paced
//   tcp-sink <port>                     accept one connection, print {bytes, ms, windowBytes, windowMs} when it ends
//   tcp-blast <host> <port> <seconds>   write as fast as TCP allows for <seconds>
//   read-loop <file> <count>            open/read/close <count> times, print per-call outcomes
import dgram from 'node:dgram';
import { openSync, readSync, closeSync } from 'node:fs';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);

async function udpSend(host: string, port: number, count: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  const payload = Buffer.alloc(64, 7);
  for (let i = 0; i < count; i++) {
    // One at a time: nothing may be lost to our own socket buffer, only to the
    // rule under test. A packet nftables drops on the way out comes back to a
    // local sender as EPERM: that is the drop we are measuring, not an error.
    await new Promise<void>((resolve, reject) =>
      socket.send(payload, port, host, (err) => (err && (err as NodeJS.ErrnoException).code !== 'EPERM' ? reject(err) : resolve())),
    );
  }
  socket.close();
}

function tcpSink(port: number): void {
  const server = net.createServer((conn) => {
    // Bytes received per 500 ms after the first: a stall of this process (or
    // the blaster) empties one window and crowds the next, so the median
    // window is the link's rate where the mean over the whole run is not.
    const windows: number[] = [];
    let bytes = 0;
    let first = 0;
    let last = 0;
    conn.on('data', (d: Buffer) => {
      last = performance.now();
      if (bytes === 0) first = last;
      bytes += d.length;
      const w = Math.floor((last - first) / WINDOW_MS);
      while (windows.length <= w) windows.push(0);
      windows[w]! += d.length;
    });
    conn.on('end', () => {
      // The last window is partial.
      console.log(JSON.stringify({ bytes, ms: last - first, windowBytes: windows.slice(0, -1), windowMs: WINDOW_MS }));
      server.close();
    });
  });
  server.listen(port, '0.0.0.0', () => console.log('listening'));
}

const WINDOW_MS = 500;

function tcpBlast(host: string, port: number, seconds: number): void {
  const chunk = Buffer.alloc(64 * 1024, 1);
  const conn = net.connect(port, host, () => {
    const until = performance.now() + seconds * 1000;
    const pump = (): void => {
      while (performance.now() < until) if (!conn.write(chunk)) return void conn.once('drain', pump);
      conn.end();
    };
    pump();
  });
}

function readLoop(file: string, count: number): void {
  const buf = Buffer.alloc(4096);
  const calls: Array<{ ok: boolean; code?: string; ms: number; bytes?: number }> = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    try {
      const fd = openSync(file, 'r');
      try {
        const bytes = readSync(fd, buf, 0, buf.length, 0);
        calls.push({ ok: true, ms: performance.now() - t0, bytes });
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      calls.push({ ok: false, code: (err as NodeJS.ErrnoException).code ?? 'unknown', ms: performance.now() - t0 });
    }
  }
  console.log(JSON.stringify(calls));
}

switch (mode) {
  case 'udp-send':
    await udpSend(args[0]!, Number(args[1]), Number(args[2]));
    break;
  case 'tcp-sink':
    tcpSink(Number(args[0]));
    break;
  case 'tcp-blast':
    tcpBlast(args[0]!, Number(args[1]), Number(args[2]));
    break;
  case 'read-loop':
    readLoop(args[0]!, Number(args[1]));
    break;
  default:
    console.error(`unknown mode ${mode}`);
    process.exitCode = 2;
}
