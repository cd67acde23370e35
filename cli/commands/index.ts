import type { Command } from '../command.ts';

export interface CommandEntry {
  name: string;
  summary: string;
  /**
   * Loaded on demand: each command pulls in a different stack (express and the
   * kube client for the webhook, Toxiproxy for the proxy, FUSE for the kernel
   * sidecar), and a proxy in every pod must not pay for the others' memory.
   */
  load(): Promise<Command>;
}

/** Every subcommand, in the order `faultline --help` lists them. */
export const commands: CommandEntry[] = [
  { name: 'webhook', summary: 'serve the admission webhooks (pod injection, policy validation) over HTTPS', load: async () => (await import('./webhook.ts')).webhookCommand },
  { name: 'sidecar', summary: "run one pod's fault-injecting proxy (the faultline-proxy container)", load: async () => (await import('./sidecar.ts')).sidecarCommand },
  { name: 'init', summary: "apply a pod's redirection and kernel-level faults (the faultline-init container)", load: async () => (await import('./init.ts')).initCommand },
  { name: 'kernel', summary: "serve a pod's FUSE IO faults and expire its kernel faults (the faultline-kernel sidecar)", load: async () => (await import('./kernel.ts')).kernelCommand },
  { name: 'certs', summary: 'create or renew the webhook CA and serving certificate; optionally patch caBundle', load: async () => (await import('./certs.ts')).certsCommand },
  { name: 'pause', summary: 'throw a brake: end all faults cluster-wide (--all) or of one tenant (--tenant)', load: async () => (await import('./pause.ts')).pauseCommand },
  { name: 'resume', summary: 'release a brake thrown by `faultline pause`', load: async () => (await import('./pause.ts')).resumeCommand },
  { name: 'check', summary: 'print the admission verdict on a ChaosPolicy, offline', load: async () => (await import('./check.ts')).checkCommand },
];
