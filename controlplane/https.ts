import { request } from 'node:https';
import { request as httpRequest } from 'node:http';

export interface GetOptions {
  /** PEM CA to trust (https only). */
  ca?: string;
  /**
   * Accept any certificate: only for loopback health probes of our own
   * children that serve a self-signed certificate (kube-controller-manager,
   * kube-scheduler), where there is nothing to authenticate.
   */
  insecureLoopback?: boolean;
  bearerToken?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * A GET for readiness probes. Node's fetch cannot take a custom CA without
 * the undici package, and these endpoints sit behind our own CAs.
 */
export function get(url: string, opts: GetOptions = {}): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  if (opts.insecureLoopback && u.hostname !== '127.0.0.1') throw new Error(`insecureLoopback is for 127.0.0.1 only, not ${url}`);
  const send = u.protocol === 'https:' ? request : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: 'GET',
        ca: opts.ca,
        ...(opts.insecureLoopback ? { rejectUnauthorized: false } : {}),
        headers: opts.bearerToken ? { authorization: `Bearer ${opts.bearerToken}` } : {},
        timeout: opts.timeoutMs ?? 2000,
        agent: false,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
