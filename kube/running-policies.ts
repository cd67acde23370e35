// The ChaosPolicies of one namespace that may run right now, as a pod sees
// them from the API server: list+watch of the policies, minus those a pause
// switch holds (switch-watch.ts) and those another pod's steady-state guard
// aborted (the SteadyStateBreached Events of the namespace, abort-notice.ts). The proxy plans its live faults from this;
// faultline-kernel lifts the kernel faults of every policy that drops out.
//
// Nothing is reported until the policies' first list has succeeded: an empty
// view before then would read as "every policy deleted".
import type { Logger } from '../common/log.ts';
import { ABORT_FIELD_SELECTOR, abortNoticeEvent, parseAbortNotice, type BreachLike } from '../policies/abort-notice.ts';
import { policyPausedBy } from '../policies/switches.ts';
import type { ChaosPolicy } from '../policies/types.ts';
import { API_GROUP, API_VERSION } from '../policies/wellknown.ts';
import { KubeClient } from './client.ts';
import type { KubeConnection } from './connection.ts';
import { ListWatch, type KubeObject } from './list-watch.ts';
import { SwitchWatch } from './switch-watch.ts';

export interface RunningPoliciesOptions {
  connection: KubeConnection;
  namespace: string;
  log: Logger;
  /** Every change: the policies no switch holds (spec.paused and expiry are the planner's to judge). */
  onChange: (running: ChaosPolicy[], all: ChaosPolicy[]) => void;
}

/** managedFields is often the bulk of a stored object and the planner never reads it. */
function project(obj: KubeObject): KubeObject {
  if (obj.metadata?.managedFields === undefined) return obj;
  const { managedFields: _, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

export class RunningPolicies {
  readonly #opts: RunningPoliciesOptions;
  readonly #client: KubeClient;
  readonly #switches: SwitchWatch;
  readonly #policies: ListWatch;
  readonly #notices: ListWatch<{ key: string }>;
  /** uid/generation of every policy generation an abort notice names. */
  #aborted = new Set<string>();
  #all: ChaosPolicy[] | undefined;

  constructor(opts: RunningPoliciesOptions) {
    this.#opts = opts;
    const { connection, namespace, log } = opts;
    this.#client = new KubeClient(connection);
    this.#switches = new SwitchWatch(this.#client, log, () => this.#report());
    this.#policies = new ListWatch({
      client: this.#client,
      path: `/apis/${API_GROUP}/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/chaospolicies`,
      kind: 'ChaosPolicy',
      log,
      project,
      onChange: (objects) => {
        this.#all = objects as unknown as ChaosPolicy[];
        this.#report();
      },
    });
    this.#notices = new ListWatch({
      client: this.#client,
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
      query: { fieldSelector: ABORT_FIELD_SELECTOR },
      kind: 'Event',
      log,
      // Only the notice is kept, not the Event.
      project: (obj) => {
        const n = parseAbortNotice(obj);
        return { key: n ? `${n.uid}/${n.abort.generation}` : '' };
      },
      onChange: (objects) => {
        const next = new Set(objects.map((o) => o.key).filter((k) => k !== ''));
        if (next.size === this.#aborted.size && [...next].every((k) => this.#aborted.has(k))) return;
        this.#aborted = next;
        this.#report();
      },
    });
  }

  /**
   * Tells the namespace (the other pods' proxies, the reconciler) that this
   * pod's guard tripped. Retried for a while: the API server may be down,
   * and this pod's faults are already off either way.
   */
  async reportAbort(ref: { namespace: string; name: string }, breach: BreachLike, pod: string): Promise<void> {
    const body = abortNoticeEvent(ref, breach, pod, Date.now(), 'faultline-proxy');
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#client.writeJson('POST', `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/events`, body, AbortSignal.timeout(5_000));
        this.#opts.log.info({ policy: `${ref.namespace}/${ref.name}`, generation: breach.generation }, 'abort notice recorded');
        return;
      } catch (err) {
        if (attempt >= 12) {
          this.#opts.log.error({ policy: `${ref.namespace}/${ref.name}`, err: (err as Error).message }, 'could not record the abort notice; other pods keep their faults until expiry');
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
      }
    }
  }

  /** The switches first: a pod starting while paused never applies a fault. */
  async start(): Promise<void> {
    await Promise.all([this.#switches.start(), this.#notices.start()]);
    await this.#policies.start();
  }

  stop(): void {
    this.#notices.stop();
    this.#policies.stop();
    this.#switches.stop();
    this.#client.close();
  }

  #report(): void {
    const all = this.#all;
    if (all === undefined) return;
    const switches = this.#switches.switches;
    const aborted = (p: ChaosPolicy): boolean => this.#aborted.has(`${p.metadata.uid ?? ''}/${p.metadata.generation ?? 0}`);
    const running = all.filter((p) => policyPausedBy(p, switches) === undefined && !aborted(p));
    try {
      this.#opts.onChange(running, all);
    } catch (err) {
      this.#opts.log.error({ err: (err as Error).message }, 'cannot act on the policy change; keeping the last state');
    }
  }
}
