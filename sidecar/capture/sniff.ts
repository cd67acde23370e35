// Reads a connection's first bytes until protocol.ts can name its protocol,
// failing open: a timeout (server-first protocols, where the client waits for
// a greeting), an early end of stream or a short read all settle as raw, with
// every byte read handed back so nothing is lost. Only ports that have HTTP or
// gRPC faults are sniffed at all; the rest go raw without waiting.

import type net from 'node:net';
import { classify, settle, type Protocol } from './protocol.ts';

export const DEFAULT_SNIFF_TIMEOUT_MS = 200;

export interface Sniffed {
  protocol: Protocol;
  /** Every byte read, to be replayed first (unshift for the HTTP servers, write upstream for raw). */
  head: Buffer;
  /** Why the verdict came without the bytes deciding it. */
  settledBy?: 'timeout' | 'end' | 'error';
  /** The client ended its side before a verdict: the socket cannot take `head` back (raw only). */
  ended: boolean;
}

export function sniff(socket: net.Socket, timeoutMs: number = DEFAULT_SNIFF_TIMEOUT_MS): Promise<Sniffed> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let head: Buffer = Buffer.alloc(0);
    const finish = (protocol: Protocol, settledBy?: Sniffed['settledBy'], ended = false): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
      resolve(settledBy ? { protocol, head, settledBy, ended } : { protocol, head, ended });
    };
    const onData = (d: Buffer): void => {
      chunks.push(d);
      head = chunks.length === 1 ? d : Buffer.concat(chunks);
      const verdict = classify(head);
      if (verdict !== 'more') finish(verdict);
    };
    const onEnd = (): void => finish(settle(head), 'end', true);
    const onError = (): void => finish('raw', 'error', true);
    const timer = setTimeout(() => finish(settle(head), 'timeout'), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}

/**
 * Gives a sniffed connection to a server that never listens itself (an
 * http.Server or http2 server): the sniffed bytes go back at the front of the
 * socket's stream, then the server takes the connection. The http2 server
 * drains what the stream holds on its own; the HTTP/1 server reads it through
 * its 'data' listener, which a paused stream (sniff paused it) only feeds once
 * resumed, after the server attached that listener.
 */
export function handOff(server: net.Server, socket: net.Socket, s: Sniffed): void {
  if (s.ended) throw new Error('handOff: the client already ended its stream; only the raw path can take these bytes');
  if (s.head.length > 0) socket.unshift(s.head);
  server.emit('connection', socket);
  if (s.protocol === 'http1') socket.resume();
}
