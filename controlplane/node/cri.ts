// A minimal CRI client for containerd's socket: what teardown needs to remove
// pods the way the kubelet would (RemovePodSandbox stops the containers, runs
// the CNI DEL that releases the IP, the veth and any hostPort rules, and
// deletes the netns), and what tests need to count what runs.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const PROTO = fileURLToPath(new URL('./cri.proto', import.meta.url));

export interface PodSandbox {
  id: string;
  metadata?: { name: string; namespace: string; uid: string };
  /** 0 ready, 1 not ready. */
  state: number;
}
export interface Container {
  id: string;
  podSandboxId: string;
  metadata?: { name: string };
  /** 0 created, 1 running, 2 exited, 3 unknown. */
  state: number;
}

type Unary<Req, Res> = (req: Req, opts: { deadline: Date }, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;
interface RuntimeClient extends grpc.Client {
  Version: Unary<object, { runtimeName: string; runtimeVersion: string }>;
  ListPodSandbox: Unary<object, { items?: PodSandbox[] }>;
  StopPodSandbox: Unary<{ podSandboxId: string }, object>;
  RemovePodSandbox: Unary<{ podSandboxId: string }, object>;
  ListContainers: Unary<object, { containers?: Container[] }>;
}

let service: grpc.ServiceClientConstructor | undefined;
function runtimeService(): grpc.ServiceClientConstructor {
  if (!service) {
    const def = loadSync(PROTO, { keepCase: false, defaults: true, enums: Number });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    service = pkg.runtime.v1.RuntimeService;
  }
  return service;
}

export class CriClient {
  #client: RuntimeClient;

  constructor(socket: string) {
    const Ctor = runtimeService();
    this.#client = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as RuntimeClient;
  }

  #call<Req, Res>(method: Unary<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      method.call(this.#client, req, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  version(timeoutMs = 2000): Promise<{ runtimeName: string; runtimeVersion: string }> {
    return this.#call(this.#client.Version, {}, timeoutMs);
  }

  async sandboxes(timeoutMs = 10_000): Promise<PodSandbox[]> {
    return (await this.#call(this.#client.ListPodSandbox, {}, timeoutMs)).items ?? [];
  }

  async containers(timeoutMs = 10_000): Promise<Container[]> {
    return (await this.#call(this.#client.ListContainers, {}, timeoutMs)).containers ?? [];
  }

  /** Stops a pod sandbox: its containers die and the kubelet recreates the pod's sandbox, as after a node reboot. */
  async stopSandbox(id: string, timeoutMs = 30_000): Promise<void> {
    await this.#call(this.#client.StopPodSandbox, { podSandboxId: id }, timeoutMs);
  }

  /**
   * Stops and removes every pod sandbox (and so every container). Returns the
   * errors of the ones that could not be removed, for the caller to report.
   */
  async removeAllSandboxes(timeoutMs = 30_000): Promise<string[]> {
    const errors: string[] = [];
    for (const sb of await this.sandboxes()) {
      const id = { podSandboxId: sb.id };
      try {
        await this.#call(this.#client.StopPodSandbox, id, timeoutMs);
        await this.#call(this.#client.RemovePodSandbox, id, timeoutMs);
      } catch (err) {
        errors.push(`pod sandbox ${sb.metadata?.namespace}/${sb.metadata?.name} (${sb.id.slice(0, 12)}): ${(err as Error).message}`);
      }
    }
    return errors;
  }

  close(): void {
    this.#client.close();
  }
}
