// The raw TCP path: bytes in, bytes out, no parsing. Also used to splice a
// connection into a Toxiproxy proxy, so resets and half-closes must survive the
// hop exactly: FIN is forwarded as FIN (allowHalfOpen + pipe's end()), and an
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
    client.pipe(up);
    up.pipe(client);
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
