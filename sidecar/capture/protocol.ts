// What a connection speaks, from its first bytes. Pure: the caller feeds the
// bytes received so far and gets a verdict, or 'more' while the bytes seen
// could still become more than one answer. Anything unrecognised is raw TCP:
// the proxy never parses what it cannot name, so it never breaks it.
//
// Recognised, as Envoy's http_inspector and tls_inspector do:
//   HTTP/2 prior knowledge  the 24-byte client preface (RFC 9113 §3.4)
//   HTTP/1.x                a request line "METHOD SP target SP HTTP/1.x"
//   TLS                     a handshake record starting a ClientHello

export type Protocol = 'http1' | 'h2' | 'tls' | 'raw';
export type Verdict = Protocol | 'more';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Longest request line looked at; a longer one is treated as not HTTP (raw), never buffered without bound. */
export const MAX_REQUEST_LINE = 8192;

// Methods of RFC 9110 and the registered extension methods clients actually send
// (WebDAV, PATCH). A token outside this list is not taken for HTTP.
const METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'PURGE',
].map((m) => Buffer.from(`${m} `, 'latin1'));

const TLS_HANDSHAKE = 0x16;
const TLS_CLIENT_HELLO = 0x01;

/** `bytes` is a prefix of `whole` (or the other way round): true if they agree on their common length. */
function agrees(bytes: Buffer, whole: Buffer): boolean {
  const n = Math.min(bytes.length, whole.length);
  return bytes.subarray(0, n).equals(whole.subarray(0, n));
}

function tls(bytes: Buffer): Verdict | undefined {
  if (bytes[0] !== TLS_HANDSHAKE) return undefined;
  if (bytes.length < 2) return 'more';
  // Record-layer version 3.x (SSL 3.0 … TLS 1.3 all write 3.1 or 3.3 here).
  if (bytes[1] !== 0x03) return undefined;
  if (bytes.length < 3) return 'more';
  if (bytes[2]! > 0x04) return undefined;
  if (bytes.length < 6) return 'more';
  return bytes[5] === TLS_CLIENT_HELLO ? 'tls' : undefined;
}

const VERSIONS = ['HTTP/1.1', 'HTTP/1.0'].map((v) => Buffer.from(v, 'latin1'));

function http1(bytes: Buffer): Verdict | undefined {
  const method = METHODS.find((m) => agrees(bytes, m));
  if (!method) return undefined;
  if (bytes.length <= method.length) return 'more';
  const eol = bytes.indexOf('\r\n', method.length, 'latin1');
  if (eol === -1 && bytes.length >= MAX_REQUEST_LINE) return undefined;
  // Without CRLF yet, a trailing CR is the first half of it.
  const end = eol !== -1 ? eol : bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  const rest = bytes.subarray(method.length, end);
  const space = rest.indexOf(0x20);
  if (space === 0) return undefined; // empty target
  if (space === -1) return eol === -1 ? 'more' : undefined; // "GET /" then CRLF is HTTP/0.9: not ours
  const version = rest.subarray(space + 1);
  if (eol !== -1) return VERSIONS.some((v) => v.equals(version)) ? 'http1' : undefined;
  return version.length <= VERSIONS[0]!.length && VERSIONS.some((v) => agrees(version, v)) ? 'more' : undefined;
}

export function classify(bytes: Buffer): Verdict {
  if (bytes.length === 0) return 'more';
  if (agrees(bytes, H2_PREFACE)) return bytes.length >= H2_PREFACE.length ? 'h2' : 'more';
  return tls(bytes) ?? http1(bytes) ?? 'raw';
}

/** The verdict when no more bytes will come (timeout, end of stream): what is still undecided is raw. */
export function settle(bytes: Buffer): Protocol {
  const v = classify(bytes);
  return v === 'more' ? 'raw' : v;
}
