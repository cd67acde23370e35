// Helpers for test/e2e/certs-rotation.test.ts: webhook replicas in
// self-managed certificate mode as child processes, a TCP round-robin in front
// of them (an API server calls one URL per webhook; this plays the Service),
// and reading what each replica serves.
import { X509Certificate } from 'node:crypto';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { request } from 'node:https';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { ControlPlane } from '../../controlplane/index.ts';
import type { ManagedProcess } from '../../controlplane/process.ts';
import { startReady } from '../../controlplane/wait.ts';

const CLI = fileURLToPath(new URL('../../bin/faultline.js', import.meta.url));

export interface ReplicaOptions {
  name: string;
  port: number;
  /** NS/NAME */
  secret: string;
  refreshInterval: string;
  propagationDelay: string;
}

/**
 * `faultline webhook --cert-secret …` on 127.0.0.1:port with its own cert dir,
 * ready when /readyz answers 200. The probe cannot know the CA before the
 * replica has made or read it, so it skips verification; tests check the
 * served chain themselves (servedCertificate).
 */
export function startReplica(cp: ControlPlane, opts: ReplicaOptions): Promise<ManagedProcess> {
  return startReady(
    {
      name: `webhook-${opts.name}`,
      command: process.execPath,
      args: [
        CLI,
        'webhook',
        `--cert-dir=${path.join(cp.dir, `certs-${opts.name}`)}`,
        '--address=127.0.0.1',
        `--port=${opts.port}`,
        `--kubeconfig=${cp.kubeconfigs.admin}`,
        '--drain-timeout-seconds=2',
        `--cert-secret=${opts.secret}`,
        // The API server dials https://127.0.0.1:PORT here, not the Service.
        '--cert-host=127.0.0.1',
        `--cert-refresh-interval=${opts.refreshInterval}`,
        `--ca-propagation-delay=${opts.propagationDelay}`,
      ],
      logFile: path.join(cp.dir, `webhook-${opts.name}.log`),
    },
    async (signal) => {
      const status = await readyz(opts.port, signal);
      return status === 200 ? true : `HTTP ${status}`;
    },
    { what: `webhook ${opts.name} /readyz`, timeoutMs: 60_000 },
  );
}

function readyz(port: number, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, agent: false, timeout: 1000, signal }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The certificate a TLS server on 127.0.0.1:port presents to a new connection. */
export function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error(`127.0.0.1:${port} presented no certificate`));
    });
    socket.setTimeout(5000, () => socket.destroy(new Error(`TLS handshake with 127.0.0.1:${port} timed out`)));
    socket.once('error', reject);
  });
}

export interface RoundRobin {
  port: number;
  /** Connections handed to each backend port so far. */
  counts: Map<number, number>;
  close(): Promise<void>;
}

/**
 * Hands each new TCP connection to the next backend in turn, as kube-proxy
 * spreads a Service's connections over its endpoints. TLS passes through
 * untouched, so the API server verifies each replica's own certificate.
 */
export async function startRoundRobin(backends: readonly number[]): Promise<RoundRobin> {
  const sockets = new Set<Socket>();
  const counts = new Map(backends.map((p) => [p, 0]));
  let next = 0;
  const server: Server = createServer((client) => {
    const port = backends[next++ % backends.length]!;
    counts.set(port, counts.get(port)! + 1);
    const upstream = tcpConnect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      // A reset on one side ends the other; the API server sees what it would see from a dead endpoint.
      s.once('error', () => (s === client ? upstream : client).destroy());
    }
    client.pipe(upstream).pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
