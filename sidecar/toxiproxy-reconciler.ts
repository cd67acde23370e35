// Drives Toxiproxy toward the desired proxies and toxics, idempotently: read
// what is there (GET /proxies, toxics included), compute the difference
// (toxiproxy-diff.ts, pure) and perform only those writes, in order.
// Runs are serialised; requests during a run are served by one more run.

import { Proxy, Toxic, Toxiproxy, type ICreateToxicBody } from 'toxiproxy-node-client';
import type { PlannedToxic } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import { diff, type ActualProxy, type DesiredProxy, type ToxiproxyAction } from './toxiproxy-diff.ts';
import { ToxiproxyHttpClient } from './toxiproxy-http.ts';


export interface ReconcilerOptions {
  apiUrl: string;
  log: Logger;
  /** Whether connections are still spliced into this proxy (it must not be deleted under them). */
  inUse: (name: string) => boolean;
  /** Called after every successful run (tests and the admin endpoint observe convergence). */
  onSynced?: () => void;
}

const RETRY_MS = 250;

function toxicBody(t: PlannedToxic): ICreateToxicBody<Record<string, number>> {
  return { name: t.name, type: t.type, stream: t.stream, toxicity: t.toxicity, attributes: t.attributes };
}

export class ToxiproxyReconciler {
  private readonly opts: ReconcilerOptions;
  private readonly client: Toxiproxy;
  private readonly http = new ToxiproxyHttpClient();
  private desired = new Map<string, DesiredProxy>();
  /** Listen addresses of proxies that match the desired state as of the last run. */
  private synced = new Map<string, { host: string; port: number }>();
  private running = false;
  private requested = 0;
  private attempted = 0;
  private waiters: Array<{ gen: number; resolve: () => void }> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private enabled = false;
  /** Runs asked for and runs finished (generations), for /stats: when they are equal, the last plan has been reconciled. */
  get runs(): { requested: number; finished: number } {
    return { requested: this.requested, finished: this.attempted };
  }

  /** Counts of API writes, for tests and /stats: proof that a no-op run wrote nothing. */
  readonly writes = { proxiesCreated: 0, proxiesDeleted: 0, proxiesUpdated: 0, toxicsAdded: 0, toxicsUpdated: 0, toxicsRemoved: 0 };

  constructor(opts: ReconcilerOptions) {
    this.opts = opts;
    this.client = new Toxiproxy(opts.apiUrl);
    // The library's client on node:http, not fetch() (toxiproxy-http.ts says why). Its
    // HttpClient type has private members, so no other class satisfies it structurally.
    this.client.api = this.http as unknown as Toxiproxy['api'];
  }

  /** Where to splice a connection for this proxy, or undefined (→ raw path, fail open). */
  address(name: string): { host: string; port: number } | undefined {
    return this.enabled ? this.synced.get(name) : undefined;
  }

  setDesired(desired: Map<string, DesiredProxy>): void {
    this.desired = desired;
    // A proxy no longer wanted stops taking new connections at once; a new one
    // becomes routable when the run has created it and read back its port.
    for (const name of [...this.synced.keys()]) if (!desired.has(name)) this.synced.delete(name);
    this.kick();
  }

  /** Toxiproxy is (back) up: converge from whatever state it is in (empty after a restart). */
  serverUp(): void {
    this.enabled = true;
    this.kick();
  }

  serverDown(): void {
    this.enabled = false;
    this.synced.clear();
    this.settle(Infinity);
  }

  stop(): void {
    this.enabled = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.settle(Infinity);
    this.http.close();
  }

  /**
   * Requests a run; resolves when a run that started after this call has
   * finished (successfully or not). Generations, not a flag, so a request that
   * lands while a run is winding down is never lost.
   */
  kick(): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const gen = ++this.requested;
    const done = new Promise<void>((resolve) => this.waiters.push({ gen, resolve }));
    if (!this.running) {
      this.running = true;
      void this.loop();
    }
    return done;
  }

  private async loop(): Promise<void> {
    while (this.attempted < this.requested && this.enabled) {
      const gen = this.requested;
      let failed = false;
      try {
        await this.run();
        this.opts.onSynced?.();
      } catch (err) {
        failed = true;
        this.opts.log.warn({ err: (err as Error).message }, 'toxiproxy reconcile failed; retrying');
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.kick(), RETRY_MS);
      }
      this.attempted = gen;
      this.settle(gen);
      if (failed) break;
    }
    this.running = false;
    // Whoever waits on a disabled reconciler (Toxiproxy down) waits for nothing.
    if (!this.enabled) this.settle(Infinity);
  }

  private settle(gen: number): void {
    const left: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.gen <= gen) w.resolve();
      else left.push(w);
    }
    this.waiters = left;
  }

  private async run(): Promise<void> {
    const actual = (await this.client.getApi().get<Record<string, ActualProxy>>(`${this.opts.apiUrl}/proxies`)).data ?? {};
    const desired = this.desired;
    const listen = new Map(Object.values(actual).map((p) => [p.name, p.listen]));
    for (const action of diff(actual, desired, this.opts.inUse)) {
      const created = await this.execute(action);
      if (created) listen.set(created.name, created.listen);
    }
    const synced = new Map<string, { host: string; port: number }>();
    for (const name of desired.keys()) {
      const address = listen.get(name)!;
      const i = address.lastIndexOf(':');
      synced.set(name, { host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    }
    // Only publish addresses if the desired state did not move under us.
    if (this.desired === desired) this.synced = synced;
  }

  /** Performs one write; a created proxy's listen address (chosen by Toxiproxy) is returned. */
  private async execute(action: ToxiproxyAction): Promise<{ name: string; listen: string } | undefined> {
    const api = this.client.getApi();
    const toxicPath = (proxy: string) => `${this.opts.apiUrl}/proxies/${proxy}`;
    switch (action.op) {
      case 'createProxy': {
        const created = await this.client.createProxy({ name: action.name, listen: '127.0.0.1:0', upstream: action.upstream, enabled: true });
        this.writes.proxiesCreated++;
        this.opts.log.info({ proxy: action.name, listen: created.listen, upstream: action.upstream }, 'toxiproxy proxy created');
        return { name: action.name, listen: created.listen };
      }
      case 'updateProxy':
        await new Proxy(this.client, { ...action.proxy, toxics: [] }).update({ enabled: true, listen: action.proxy.listen, upstream: action.upstream });
        this.writes.proxiesUpdated++;
        return undefined;
      case 'deleteProxy':
        await new Proxy(this.client, { ...action.proxy, toxics: [] }).remove();
        this.writes.proxiesDeleted++;
        this.opts.log.info({ proxy: action.proxy.name }, 'toxiproxy proxy deleted');
        return undefined;
      case 'addToxic':
        await api.post(`${toxicPath(action.proxy)}/toxics`, toxicBody(action.toxic));
        this.writes.toxicsAdded++;
        return undefined;
      case 'updateToxic':
        await new Toxic(api, toxicPath(action.proxy), toxicBody(action.toxic)).update(toxicBody(action.toxic));
        this.writes.toxicsUpdated++;
        return undefined;
      case 'removeToxic':
        await api.delete(`${toxicPath(action.proxy)}/toxics/${action.name}`);
        this.writes.toxicsRemoved++;
        return undefined;
    }
  }
}
