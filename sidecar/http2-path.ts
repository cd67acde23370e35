// The HTTP/2 path of one target: connections sniffed as h2c (prior knowledge)
// are handed to a private http2 server (never listening itself); each stream
// gets the same per-request decision as the HTTP/1 path (http-faults.ts) and,
// unless aborted, is forwarded as a stream on one shared upstream session.
// gRPC is HTTP/2 with trailers, so headers, data and trailers are all relayed
// as they come, and an abort with a gRPC code is a trailers-only response
// (HTTP 200, grpc-status, grpc-message), the way Envoy's fault filter sends it.
// A stream no fault matches is relayed untouched: a fault elsewhere on the
// port never breaks it.

import http2 from 'node:http2';
import type net from 'node:net';
import { isKubeletRequest } from './capture/probes.ts';
import { handOff, type Sniffed } from './capture/sniff.ts';
import { decideRequest, faultHeader, isGrpc, NO_FAULT, type Decision } from './http-faults.ts';
import { FAULT_HEADER, type HttpPathOptions } from './http-path.ts';

const { HTTP2_HEADER_STATUS, HTTP2_HEADER_CONTENT_TYPE, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
const GRPC_UNAVAILABLE = 14;

/** grpc-message is percent-encoded: every byte outside printable ASCII, and '%' itself (gRPC over HTTP/2, "Responses"). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** grpc-status of a header block, if it carries one. */
function grpcStatusOf(headers: http2.IncomingHttpHeaders): number | undefined {
  const v = headers['grpc-status'];
  const n = Number(Array.isArray(v) ? v[0] : v);
  return v !== undefined && Number.isInteger(n) ? n : undefined;
}

/** Received headers (pseudo-headers included) as headers to send on, verbatim. */
function relayable(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value;
  return out;
}

export class Http2Path {
  private readonly server: http2.Http2Server;
  private upstream: http2.ClientHttp2Session | undefined;
  /** Why a session failed: its streams only see ERR_HTTP2_STREAM_CANCEL, the client deserves the cause. */
  private readonly sessionErrors = new WeakMap<http2.ClientHttp2Session, Error>();
  private readonly opts: HttpPathOptions;
  /** What each observed stream answered: HTTP status, and grpc-status once headers or trailers carry it (guard.ts). */
  private readonly outcomes = new WeakMap<http2.ServerHttp2Stream, { status: number; grpc?: number }>();

  constructor(opts: HttpPathOptions) {
    this.opts = opts;
    this.server = http2.createServer({ settings: { enableConnectProtocol: false } });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.server.on('sessionError', (err) => opts.log.debug({ err: err.message }, 'h2 client session error'));
  }

  /** Takes over a sniffed h2c connection, its preface put back (capture/sniff.ts). */
  handOff(socket: net.Socket, sniffed: Sniffed): void {
    handOff(this.server as unknown as net.Server, socket, sniffed);
  }

  close(): void {
    this.upstream?.destroy();
    this.upstream = undefined;
    this.server.close();
  }

  private session(): http2.ClientHttp2Session {
    if (this.upstream && !this.upstream.closed && !this.upstream.destroyed) return this.upstream;
    const { connectHost, connectPort } = this.opts.target;
    const host = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
    const session = http2.connect(`http://${host}:${connectPort}`);
    session.on('error', (err) => {
      this.sessionErrors.set(session, err);
      this.opts.log.debug({ err: err.message, target: connectPort }, 'h2 upstream session error');
    });
    session.on('close', () => {
      if (this.upstream === session) this.upstream = undefined;
    });
    // Idle sessions must not keep the proxy's event loop alive on their own.
    session.unref();
    this.upstream = session;
    return session;
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const { metrics, target } = this.opts;
    metrics.request(target.direction);
    stream.on('error', () => undefined); // a client reset is the client's business; the upstream stream is closed below
    // Kubelet probes (gRPC probes included) and hooks are never faulted (capture/probes.ts), nor judged by the guard.
    if (isKubeletRequest(headers)) return this.forward(stream, headers, NO_FAULT);
    const observe = this.opts.observer?.();
    if (observe) {
      // A gRPC call's outcome is its grpc-status, which may only come in the trailers: judged when the stream closes.
      const t0 = performance.now();
      const outcome: { status: number; grpc?: number } = { status: 0 };
      this.outcomes.set(stream, outcome);
      stream.once('close', () => {
        const o = this.outcomes.get(stream) ?? outcome;
        if (o.status !== 0) observe(o.status, performance.now() - t0, o.grpc);
      });
    }
    const faults = this.opts.faults();
    const req = { method: headers[':method'] ?? 'GET', url: headers[':path'] ?? '/', headers };
    const decision = faults.length > 0 ? decideRequest(faults, req) : NO_FAULT;
    const networkDelayMs = this.opts.networkDelayMs();
    const delayMs = decision.delayMs + networkDelayMs;
    for (const f of decision.fired) {
      const family = f.fault.protocol === 'grpc' ? 'grpc' : 'http';
      metrics.fault(`${family}.${f.kind}`, f.kind === 'delay' ? decision.delayMs : 0);
    }
    if (networkDelayMs > 0) metrics.fault('network.delay', networkDelayMs);
    if (delayMs <= 0) return this.respond(stream, headers, decision);
    const timer = setTimeout(() => this.respond(stream, headers, decision), delayMs);
    stream.once('close', () => {
      if (!stream.headersSent) {
        clearTimeout(timer);
        metrics.stats.clientAbortsDuringDelay++;
      }
    });
  }

  private extraHeaders(decision: Decision): http2.OutgoingHttpHeaders {
    const value = this.opts.faultHeader ? faultHeader(decision) : undefined;
    return value ? { [FAULT_HEADER]: value } : {};
  }

  private respond(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, decision: Decision): void {
    if (stream.destroyed || stream.closed) return;
    const abort = decision.abort;
    if (abort?.grpcStatus !== undefined) {
      this.note(stream, 200, abort.grpcStatus);
      stream.respond(
        {
          [HTTP2_HEADER_STATUS]: 200,
          [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
          'grpc-status': String(abort.grpcStatus),
          'grpc-message': grpcMessage(abort.body ?? 'fault filter abort'),
          ...this.extraHeaders(decision),
        },
        { endStream: true },
      );
      return;
    }
    if (abort) {
      this.note(stream, abort.status);
      const body = abort.body ?? 'fault filter abort';
      stream.respond({ [HTTP2_HEADER_STATUS]: abort.status, [HTTP2_HEADER_CONTENT_TYPE]: 'text/plain', 'content-length': Buffer.byteLength(body), ...this.extraHeaders(decision) });
      stream.end(body);
      return;
    }
    this.forward(stream, headers, decision);
  }

  private forward(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, decision: Decision): void {
    let up: http2.ClientHttp2Stream;
    const session = this.session();
    try {
      up = session.request(relayable(headers), { endStream: stream.readableEnded });
    } catch (err) {
      return this.upstreamFailed(stream, headers, err as Error);
    }
    let trailers: http2.OutgoingHttpHeaders = {};
    up.on('trailers', (t) => {
      trailers = relayable(t);
      this.note(stream, 0, grpcStatusOf(t));
    });
    up.on('response', (response) => {
      if (stream.destroyed) return;
      this.note(stream, Number(response[HTTP2_HEADER_STATUS]) || 0, grpcStatusOf(response));
      // gRPC always ends in trailers (grpc-status); other responses end with their data.
      // A trailers-only answer (grpc-status in the one header block, END_STREAM on it: how servers send
      // most errors) must stay one: relayed as headers, then empty trailers, the client sees no status.
      if (isGrpc(response) && response['grpc-status'] !== undefined) {
        stream.respond({ ...relayable(response), ...this.extraHeaders(decision) }, { endStream: true });
        up.resume();
        return;
      }
      const waitForTrailers = isGrpc(response);
      stream.respond({ ...relayable(response), ...this.extraHeaders(decision) }, { waitForTrailers });
      if (waitForTrailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      // Ended on the upstream's close, not its 'end': see 'close' below.
      up.pipe(stream, { end: false });
    });
    /**
     * Mid-response: the client must see the stream fail, not end cleanly, and
     * the guard counts the failure, not the status the headers carried. Reset
     * by destroy(): close(code) ends the writable side first, and a client
     * then reads END_STREAM, a whole answer, before the RST_STREAM.
     */
    const cutOff = (): void => {
      if (stream.destroyed || stream.writableEnded) return;
      this.note(stream, isGrpc(headers) ? 200 : 502, isGrpc(headers) ? GRPC_UNAVAILABLE : undefined);
      stream.destroy(new Error('upstream failed mid-response'));
    };
    let failed = false;
    up.on('error', (err) => {
      failed = true;
      // The session's own error (ECONNREFUSED, …) is emitted after its streams' cancel: wait a turn for it.
      if (!stream.headersSent) return void setImmediate(() => this.upstreamFailed(stream, headers, this.sessionErrors.get(session) ?? err));
      cutOff();
    });
    up.on('close', () => {
      if (failed || stream.destroyed) return;
      // The upstream reset the stream before answering (e.g. REFUSED_STREAM): pass the code on.
      if (!stream.headersSent) return void stream.close(up.rstCode || NGHTTP2_REFUSED_STREAM);
      // The answer ends as the upstream's did. A lost upstream connection
      // reaches `up` as an 'end' and then a close with CANCEL, no error: the
      // body is cut short, and passing the 'end' on would make it look whole.
      if (up.rstCode === NGHTTP2_NO_ERROR && up.readableEnded) {
        if (!stream.writableEnded) stream.end();
      } else cutOff();
    });
    stream.on('close', () => {
      if (!up.closed) up.close(NGHTTP2_CANCEL);
    });
    if (!stream.readableEnded) stream.pipe(up);
  }

  /** Records an observed stream's answer; status 0 keeps the one noted before (trailers come after the headers). */
  private note(stream: http2.ServerHttp2Stream, status: number, grpc?: number): void {
    const o = this.outcomes.get(stream);
    if (!o) return;
    if (status !== 0) o.status = status;
    if (grpc !== undefined) o.grpc = grpc;
  }

  private upstreamFailed(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, err: Error): void {
    this.opts.metrics.stats.upstreamErrors++;
    const { connectHost, connectPort } = this.opts.target;
    const message = `faultline-proxy: upstream ${connectHost}:${connectPort} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
    if (stream.destroyed || stream.headersSent) return;
    this.note(stream, isGrpc(headers) ? 200 : 502, isGrpc(headers) ? GRPC_UNAVAILABLE : undefined);
    if (isGrpc(headers)) {
      stream.respond({ [HTTP2_HEADER_STATUS]: 200, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc', 'grpc-status': String(GRPC_UNAVAILABLE), 'grpc-message': grpcMessage(message) }, { endStream: true });
    } else {
      stream.respond({ [HTTP2_HEADER_STATUS]: 502, [HTTP2_HEADER_CONTENT_TYPE]: 'text/plain' });
      stream.end(`${message}\n`);
    }
  }
}
