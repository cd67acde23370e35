// What the webhook's TLS listener accepts (issue 13 L4): TLS 1.3, or TLS 1.2
// with forward secrecy (ECDHE) and an AEAD cipher only — no static-RSA key
// exchange, no CBC, no SHA-1 MACs (Mozilla's "intermediate" profile, which
// every supported kube-apiserver meets) — no renegotiation, and bounds on
// connections that never complete a handshake and on how many connections are
// held at once.
import { constants } from 'node:crypto';
import type { TlsOptions } from 'node:tls';

/** TLS 1.2 suites, OpenSSL names; TLS 1.3 suites are all AEAD and stay at Node's defaults. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const;

/**
 * A client has this long from connecting to finishing its handshake (Node's
 * default is 120 s: an idle socket that never sends a ClientHello was held
 * that long). The API server completes one in milliseconds.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Connections held at once. The API server keeps a few keep-alive
 * connections per replica; 1,024 leaves ample room for many API servers and
 * Prometheus, and bounds the sockets (and memory) a flood can take.
 */
export const MAX_CONNECTIONS = 1_024;

/** The options every secure context of the listener is built with (initial, and on certificate reload). */
export function tlsServerOptions(): TlsOptions {
  return {
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS.join(':'),
    honorCipherOrder: true,
    // A TLS 1.2 client could otherwise renegotiate and present another
    // certificate mid-connection; without it, a connection's client
    // certificate is its handshake's, and is checked once (caller-auth.ts).
    // Go's TLS client, the API server's, never renegotiates.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
}
