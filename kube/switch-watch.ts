// The brakes as a pod sees them: list+watch of the cluster-wide switch (the
// Namespace faultline-system, by name) and of the ChaosTenants (spec.paused),
// straight from the API server. No webhook or reconciler sits in between, so
// a switch thrown while they are down still reaches every sidecar and
// faultline-kernel within one watch event.
//
// Until a first list succeeds nothing is paused (the switch objects may not
// be readable yet); a watch that later fails keeps the last state, like the
// policy watch. Used by the proxy (live faults) and faultline-kernel (tc/FUSE).
import type { Logger } from '../common/log.ts';
import { CLUSTER_SWITCH_NAMESPACE, NO_SWITCHES, switchesFrom, type Switches } from '../policies/switches.ts';
import type { ChaosTenant } from '../policies/types.ts';
import { API_GROUP, API_VERSION } from '../policies/wellknown.ts';
import type { KubeClient } from './client.ts';
import { ListWatch, type KubeObject } from './list-watch.ts';

/** Only what the switches read: an idle sidecar keeps a few hundred bytes per tenant. */
function projectNamespace(obj: KubeObject): KubeObject {
  const meta = obj.metadata as { name?: string; resourceVersion?: string; annotations?: Record<string, string> } | undefined;
  return { metadata: { name: meta?.name, resourceVersion: meta?.resourceVersion, annotations: meta?.annotations ?? {} } };
}
function projectTenant(obj: KubeObject): KubeObject {
  const spec = (obj.spec ?? {}) as { paused?: unknown; namespaces?: unknown };
  return { metadata: { name: obj.metadata?.name, resourceVersion: obj.metadata?.resourceVersion }, spec: { paused: spec.paused === true, namespaces: Array.isArray(spec.namespaces) ? spec.namespaces : [] } };
}

export class SwitchWatch {
  #switches: Switches = NO_SWITCHES;
  #annotations: Record<string, string> | undefined;
  #tenants: ChaosTenant[] = [];
  readonly #watches: ListWatch[];
  readonly #onChange: (s: Switches) => void;
  readonly #log: Logger;

  constructor(client: KubeClient, log: Logger, onChange: (s: Switches) => void) {
    this.#onChange = onChange;
    this.#log = log;
    this.#watches = [
      new ListWatch({
        client,
        path: '/api/v1/namespaces',
        query: { fieldSelector: `metadata.name=${CLUSTER_SWITCH_NAMESPACE}` },
        kind: 'Namespace',
        log,
        project: projectNamespace,
        onChange: (objects) => {
          this.#annotations = (objects[0]?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations;
          this.#recompute();
        },
      }),
      new ListWatch({
        client,
        path: `/apis/${API_GROUP}/${API_VERSION}/chaostenants`,
        kind: 'ChaosTenant',
        log,
        project: projectTenant,
        onChange: (objects) => {
          this.#tenants = objects as unknown as ChaosTenant[];
          this.#recompute();
        },
      }),
    ];
  }

  get switches(): Switches {
    return this.#switches;
  }

  /** Resolves once both first lists have succeeded or failed (then they retry in the background). */
  async start(): Promise<void> {
    await Promise.all(this.#watches.map((w) => w.start()));
  }

  stop(): void {
    for (const w of this.#watches) w.stop();
  }

  #recompute(): void {
    const next = switchesFrom(this.#annotations, this.#tenants);
    const prev = this.#switches;
    this.#switches = next;
    const same = prev.cluster === next.cluster && sameSet(prev.pausedTenants, next.pausedTenants) && sameSet(new Set(prev.pausedNamespaces.keys()), new Set(next.pausedNamespaces.keys()));
    if (same) return;
    this.#log.warn({ cluster_paused: next.cluster, paused_tenants: [...next.pausedTenants] }, next.cluster || next.pausedTenants.size > 0 ? 'pause switch on' : 'pause switches off');
    this.#onChange(next);
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
