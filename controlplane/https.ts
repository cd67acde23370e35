import { request } from 'node:https';
import { request as httpRequest } from 'node:http';

export interface GetOptions {
  /** PEM CA to trust (https only). */
  ca?: string;
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
  const send = u.protocol === 'https:' ? request : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: 'GET',
        ca: opts.ca,
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
