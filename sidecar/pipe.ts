// The raw TCP path: bytes in, bytes out, no parsing. Also used to splice a
// connection into a Toxiproxy proxy, so resets and half-closes must survive the
// hop exactly: FIN is forwarded as FIN (allowHalfOpen + relay's end()), and an
// error on one side (ECONNRESET from reset_peer, a refused upstream) is turned
// into an RST on the other, which is what the client would see without us.

import net from 'node:net';

export interface PipeOptions {
  /** Hold the connection this long before the first byte moves (handed-off netem delay). */
  delayMs?: number;
  /** Bytes already read from the client (sniffed), sent upstream first. */
  head?: Buffer;
  onClose?: () => void;
  /** The upstream accepted (true) or refused (false) the connection; other errors are not reported. */
  onUpstream?: (accepted: boolean) => void;
}

export function pipeTo(client: net.Socket, host: string, port: number, opts: PipeOptions = {}): void {
  let upstream: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let clientClosed = false;
  let upstreamClosed = false;
  const maybeFinish = (): void => {
    if (clientClosed && (upstream === undefined || upstreamClosed)) opts.onClose?.();
  };

  client.on('error', () => {
    if (upstream && !upstream.destroyed && !upstream.connecting) upstream.resetAndDestroy();
    else upstream?.destroy();
  });
  client.on('close', () => {
    clientClosed = true;
    if (timer) clearTimeout(timer);
    // Both directions ended cleanly: upstream closes by itself. Otherwise the
    // client vanished mid-stream and nothing may be left behind upstream.
    if (upstream && !upstream.writableEnded) upstream.destroy();
    maybeFinish();
  });

  const connect = (): void => {
    timer = undefined;
    const up = net.connect({ host, port, allowHalfOpen: true, noDelay: true });
    upstream = up;
    if (opts.onUpstream) up.once('connect', () => opts.onUpstream!(true));
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') opts.onUpstream?.(false);
      if (!client.destroyed) client.resetAndDestroy();
    });
    up.on('close', () => {
      upstreamClosed = true;
      if (!client.writableEnded) client.destroy();
      maybeFinish();
    });
    if (opts.head && opts.head.length > 0) up.write(opts.head);
    relay(client, up);
    relay(up, client);
    client.resume();
  };

  if (opts.delayMs && opts.delayMs > 0) {
    // Paused, the kernel buffers (and eventually back-pressures) the client's first bytes.
    client.pause();
    timer = setTimeout(connect, opts.delayMs);
  } else {
    connect();
  }
}

/**
 * `from` into `to` as `from.pipe(to)` would (back-pressure; `from`'s FIN ends
 * `to`), except that each chunk's memory is freed once the kernel has taken it.
 * Every socket read allocates a fresh 64 KB buffer. Piped, a spent chunk
 * waits for V8's next young-generation collection, which the small objects
 * each read makes bring on only every ~1,000 reads: a 256 MB transfer through
 * the raw path took the proxy from 90 to 157 MB and back, again and again
 * (npm run bench:sidecar's TCP transfer, RSS sampled every 2 ms). Relayed this
 * way, the same transfer in a bare relay peaked at 58-59 MB against 106-108
 * MB piped, and took 348-399 against 554-757 ms (2 runs each, 2026-11-27).
 * The relay owns what `from` reads: no other listener may keep a chunk.
 */
function relay(from: net.Socket, to: net.Socket): void {
  let waiting = false;
  const resume = (): void => {
    waiting = false;
    from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    if (to.write(chunk, () => release(chunk)) || waiting) return;
    waiting = true;
    from.pause();
    to.once('drain', resume);
  });
  // A client that sent its FIN while its first bytes were being sniffed has
  // already emitted 'end' (pipe() checks the same).
  if (from.readableEnded) process.nextTick(() => to.end());
  else from.once('end', () => to.end());
}

/**
 * Frees a written chunk's memory now, when the chunk is the whole of its
 * ArrayBuffer, as a socket read's is. A slice of a shared buffer (Buffer's
 * pool) is left to the garbage collector.
 */
function release(chunk: Buffer): void {
  const backing = chunk.buffer;
  if (backing instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === backing.byteLength) backing.transfer(0);
}
