// Who may ask for an admission review (issue 13 M2). The API server can
// authenticate itself to webhooks with a client certificate (its
// AdmissionConfiguration's kubeConfigFile, per webhook host). With
// --client-ca-file the listener asks every client for a certificate, and the
// review endpoints answer only those whose certificate that CA signed (and,
// with --client-name, whose subject CN is listed): anyone else gets a 401 with
// no review done, so nothing derived from any tenant's objects. /healthz,
// /readyz and /metrics stay open to kubelet probes and Prometheus.
import { readFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';

export interface CallerAuthConfig {
  /** PEM of the CA(s) the API server's client certificate chains to. */
  caPem: string;
  /** Accepted subject CNs; empty accepts any certificate the CA signed. */
  names: readonly string[];
}

export async function loadCallerAuth(caFile: string, names: readonly string[]): Promise<CallerAuthConfig> {
  const caPem = await readFile(caFile, 'utf8');
  if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`--client-ca-file ${caFile} holds no PEM certificate`);
  return { caPem, names };
}

/**
 * callerRejection() once per connection. A connection's client certificate is
 * the one from its handshake (the listener refuses renegotiation:
 * tls-policy.ts), and getPeerCertificate() builds the whole certificate, its
 * three fingerprints included, on every call: 100-170 µs here, as much as the
 * rest of a review. Checked per review, it doubled the webhook's CPU per
 * review with client authentication on (571-623 against 263-321 µs at max
 * rate, 3 interleaved rounds, 2026-11-26). What bench:webhook's
 * withClientAuth.cpuOverWithout still shows (0.985-1.18 in three runs) is
 * TLS's own: a bare HTTPS server asking for client certificates spent 81-97
 * against 66-69 µs per request.
 */
export function connectionAuthenticator(config: CallerAuthConfig): (socket: TLSSocket) => string | undefined {
  // null: authenticated (undefined is "not checked yet").
  const verdicts = new WeakMap<TLSSocket, string | null>();
  return (socket) => {
    let verdict = verdicts.get(socket);
    if (verdict === undefined) {
      verdict = callerRejection(socket, config) ?? null;
      verdicts.set(socket, verdict);
    }
    return verdict ?? undefined;
  };
}

/** Why the caller is not authenticated, or undefined when it is. */
export function callerRejection(socket: TLSSocket, config: CallerAuthConfig): string | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return 'no client certificate';
  if (!socket.authorized) return `client certificate not trusted: ${String(socket.authorizationError)}`;
  const cn = cert.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  if (config.names.length > 0 && (name === undefined || !config.names.includes(name))) return `client certificate CN ${JSON.stringify(name ?? '')} is not accepted`;
  return undefined;
}
