import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { get } from './https.ts';
import type { ManagedProcess } from './process.ts';
import { startReady } from './wait.ts';

export interface EtcdOptions {
  binary: string;
  /** Parent dir: holds etcd-data/ and etcd.log. */
  dir: string;
  clientPort: number;
  peerPort: number;
  timeoutMs: number;
  progress?: (line: string) => void;
}

export interface Etcd {
  process: ManagedProcess;
  /** For kube-apiserver's --etcd-servers. */
  url: string;
}

/** A single-member etcd on loopback, throwaway data (no fsync), ready when /health says so. */
export async function startEtcd(opts: EtcdOptions): Promise<Etcd> {
  const dataDir = path.join(opts.dir, 'etcd-data');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const url = `http://127.0.0.1:${opts.clientPort}`;
  const peerUrl = `http://127.0.0.1:${opts.peerPort}`;
  const proc = await startReady(
    {
      name: 'etcd',
      command: opts.binary,
      args: [
        '--name=default',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // The data dies with the control plane; fsync only costs time (a lot
        // of it on a loaded CI disk) and buys durability nobody needs here.
        '--unsafe-no-fsync=true',
        // 8 GiB, as envtest: the backend is a sparse mmap, so a generous quota
        // costs nothing and a long `faultline up` session never hits
        // "mvcc: database space exceeded".
        '--quota-backend-bytes=8589934592',
        '--log-level=warn',
      ],
      logFile: path.join(opts.dir, 'etcd.log'),
    },
    async (signal) => {
      const res = await get(`${url}/health`, { timeoutMs: 1000, signal });
      return res.status === 200 && (JSON.parse(res.body) as { health?: string }).health === 'true' ? true : `HTTP ${res.status}`;
    },
    { what: 'etcd /health', timeoutMs: opts.timeoutMs, progress: opts.progress },
  );
  return { process: proc, url };
}
