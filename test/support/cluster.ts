// Helpers every suite on a local control plane uses, e2e and node alike:
// kubectl that throws, polling until something holds, fresh namespaces, and
// tenants set up as a cluster admin would.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane, User } from '../../controlplane/index.ts';
import { check } from '../../controlplane/kubectl.ts';
import type { ChaosTenant, ChaosTenantSpec } from '../../policies/types.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../../policies/wellknown.ts';

/**
 * kubectl as `user`; an object given as `input` is sent as JSON, a string as
 * is (for `-f -`). Throws, with kubectl's stderr, unless it exits 0; returns stdout.
 */
export async function kubectlOk(cp: ControlPlane, user: User, args: readonly string[], input?: object | string, timeoutMs?: number): Promise<string> {
  const opts = { ...(input !== undefined ? { input: typeof input === 'string' ? input : JSON.stringify(input) } : {}), ...(timeoutMs ? { timeoutMs } : {}) };
  return check(await cp.kubectl(user, args, opts), `kubectl ${args.join(' ')} (as ${user})`);
}

/** `kubectl get <args> -o json` as `user`, parsed. */
export async function getJson<T>(cp: ControlPlane, user: User, args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, user, ['get', ...args, '-o', 'json'])) as T;
}

/**
 * Polls `probe` every `everyMs` until it returns a value other than false or
 * a string (a string is the reason it is not there yet, and goes into the
 * error); at most `timeoutMs`. A probe that throws counts as not yet.
 */
export async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | false | string>, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await probe().catch((err: Error) => err.message);
    if (r !== false && typeof r !== 'string') return r;
    if (typeof r === 'string') last = r;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${last})` : ''}`);
    await sleep(everyMs);
  }
}

export interface NamespaceOptions {
  /** Name prefix (default "e2e"). */
  prefix?: string;
  /** Label the namespace faultline.dev/chaos=enabled. */
  chaos?: boolean;
  labels?: Record<string, string>;
  /** Bind this user to the built-in `edit` ClusterRole in the namespace (a tenant's usual rights). */
  editor?: User;
}

let namespaceCounter = 0;

/**
 * Creates a namespace no other test uses, as the cluster admin, and waits
 * for its `default` ServiceAccount (pods need it; the control plane's
 * ServiceAccount controller creates it asynchronously, as in a real cluster).
 * Namespaces are not deleted: the cluster is discarded with the run.
 */
export async function freshNamespace(cp: ControlPlane, opts: NamespaceOptions = {}): Promise<string> {
  const name = `${opts.prefix ?? 'e2e'}-${++namespaceCounter}-${randomBytes(3).toString('hex')}`;
  const labels = { ...opts.labels, ...(opts.chaos ? { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } : {}) };
  await kubectlOk(cp, 'admin', ['create', '-f', '-'], { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  if (opts.editor) {
    await kubectlOk(cp, 'admin', ['create', 'rolebinding', `${opts.editor}-edit`, '--clusterrole=edit', `--user=${opts.editor}`, '-n', name]);
  }
  await eventually(`namespace ${name}'s default ServiceAccount`, 15_000, async () => (await cp.kubectl('admin', ['get', 'serviceaccount', 'default', '-n', name])).code === 0, 50);
  return name;
}

/** Creates (as admin) a ChaosTenant owning `namespace`, authored by group `group`. */
export async function createTenant(cp: ControlPlane, name: string, namespace: string, group: string, allow: ChaosTenantSpec['allow']): Promise<void> {
  const tenant: ChaosTenant = {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name },
    spec: { namespaces: [namespace], subjects: [{ kind: 'Group', name: group }], allow },
  };
  await kubectlOk(cp, 'admin', ['create', '-f', '-'], tenant);
}

/** A fresh chaos namespace alice may edit, owned by tenant `tenant-<ns>` of her group tenant-shop (or `opts.tenant`, `opts.group`). */
export async function tenantNamespace(cp: ControlPlane, allow: ChaosTenantSpec['allow'], opts: { prefix?: string; tenant?: string; group?: string } = {}): Promise<string> {
  const ns = await freshNamespace(cp, { chaos: true, editor: 'alice', ...(opts.prefix ? { prefix: opts.prefix } : {}) });
  await createTenant(cp, opts.tenant ?? `tenant-${ns}`, ns, opts.group ?? 'tenant-shop', allow);
  return ns;
}
