// The node's processes: containerd, CoreDNS, kube-proxy and the kubelet, each
// started from a config file in the run's dir and probed until it serves.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { get } from '../https.ts';
import type { ManagedProcess } from '../process.ts';
import { startReady } from '../wait.ts';
import { containerdConfig, corefile, kubeletConfig, kubeProxyConfig, NODE_NAME, NODE_NETWORK, type KubeletSettings, type KubeProxySettings, type NodeLayout } from './config.ts';
import { CriClient } from './cri.ts';

interface Common {
  dir: string;
  timeoutMs: number;
  progress?: (line: string) => void;
}

export async function startContainerd(opts: Common & { binary: string; layout: NodeLayout; streamPort: number }): Promise<ManagedProcess> {
  const config = path.join(opts.dir, 'containerd.toml');
  await writeFile(config, containerdConfig(opts.layout, opts.streamPort));
  const cri = new CriClient(opts.layout.containerdSocket);
  try {
    return await startReady(
      { name: 'containerd', command: opts.binary, args: ['--config', config, '--log-level', 'warn'], logFile: path.join(opts.dir, 'containerd.log') },
      // Ready when the CRI service answers, not merely when the socket exists.
      async () => ((await cri.version()).runtimeName ? true : 'no runtime name'),
      { what: 'containerd CRI', timeoutMs: opts.timeoutMs, progress: opts.progress, intervalMs: 100 },
    );
  } finally {
    cri.close();
  }
}

export async function startCoredns(opts: Common & { binary: string; kubeconfig: string; readyPort: number }): Promise<ManagedProcess> {
  const file = path.join(opts.dir, 'Corefile');
  await writeFile(file, corefile(opts.kubeconfig, opts.readyPort));
  return startReady(
    { name: 'coredns', command: opts.binary, args: ['-conf', file], logFile: path.join(opts.dir, 'coredns.log') },
    async (signal) => {
      const res = await get(`http://127.0.0.1:${opts.readyPort}/ready`, { timeoutMs: 1000, signal });
      return res.status === 200 ? true : `HTTP ${res.status}: ${res.body.trim()}`;
    },
    { what: 'CoreDNS /ready', timeoutMs: opts.timeoutMs, progress: opts.progress },
  );
}

export async function startKubeProxy(opts: Common & { binary: string } & KubeProxySettings): Promise<ManagedProcess> {
  const file = path.join(opts.dir, 'kube-proxy.yaml');
  await writeFile(file, kubeProxyConfig(opts));
  return startReady(
    { name: 'kube-proxy', command: opts.binary, args: [`--config=${file}`], logFile: path.join(opts.dir, 'kube-proxy.log') },
    // /healthz is 200 once the first sync of Services into rules is done.
    async (signal) => {
      const res = await get(`http://127.0.0.1:${opts.healthzPort}/healthz`, { timeoutMs: 1000, signal });
      return res.status === 200 ? true : `HTTP ${res.status}: ${res.body.trim().slice(0, 200)}`;
    },
    { what: 'kube-proxy /healthz', timeoutMs: opts.timeoutMs, progress: opts.progress },
  );
}

export async function startKubelet(opts: Common & { binary: string; kubeconfig: string } & KubeletSettings): Promise<ManagedProcess> {
  const file = path.join(opts.dir, 'kubelet.yaml');
  await writeFile(file, kubeletConfig(opts));
  return startReady(
    {
      name: 'kubelet',
      command: opts.binary,
      args: [
        `--config=${file}`,
        `--kubeconfig=${opts.kubeconfig}`,
        `--root-dir=${opts.layout.kubeletRoot}`,
        `--cert-dir=${path.join(opts.layout.kubeletRoot, 'pki')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_NETWORK.gateway}`,
        '--v=1',
      ],
      logFile: path.join(opts.dir, 'kubelet.log'),
    },
    async (signal) => {
      const res = await get(`http://127.0.0.1:${opts.healthzPort}/healthz`, { timeoutMs: 1000, signal });
      return res.status === 200 ? true : `HTTP ${res.status}`;
    },
    { what: 'kubelet /healthz', timeoutMs: opts.timeoutMs, progress: opts.progress },
  );
}
