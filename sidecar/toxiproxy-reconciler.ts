// Drives Toxiproxy toward the desired proxies and toxics, idempotently:
// read what is there (GET /proxies, toxics included), then add, update or remove
// only the difference. An unchanged proxy is never recreated, so connections
// already flowing through it survive a plan update; a proxy nobody wants any more
// is stripped of its toxics and deleted only once no connection uses it.
// Runs are serialised; requests during a run are served by one more run.

import { Proxy, Toxic, Toxiproxy, type ICreateToxicBody } from 'toxiproxy-node-client';
import type { PlannedToxic } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';

export interface DesiredProxy {
  upstream: string;
  toxics: PlannedToxic[];
}

/** Toxiproxy's JSON for a proxy; the client library's Proxy drops the toxics, so we read the raw API. */
interface ActualProxy {
  name: string;
  listen: string;
  upstream: string;
  enabled: boolean;
  toxics: Array<{ name: string; type: string; stream: string; toxicity: number; attributes: Record<string, number> }>;
}

export interface ReconcilerOptions {
  apiUrl: string;
  log: Logger;
  /** Whether connections are still spliced into this proxy (it must not be deleted under them). */
  inUse: (name: string) => boolean;
  /** Called after every successful run (tests and the admin endpoint observe convergence). */
  onSynced?: () => void;
}

const RETRY_MS = 250;

function sameToxic(want: PlannedToxic, got: ActualProxy['toxics'][number]): 'same' | 'update' | 'replace' {
  // Toxiproxy cannot change a toxic's type or stream in place.
  if (want.type !== got.type || want.stream !== got.stream) return 'replace';
  if (want.toxicity !== got.toxicity) return 'update';
  // Toxiproxy echoes every attribute of the type, defaults included; an
  // attribute the plan leaves out means Toxiproxy's default, 0.
  const keys = new Set([...Object.keys(want.attributes), ...Object.keys(got.attributes)]);
  for (const k of keys) if ((want.attributes[k] ?? 0) !== (got.attributes[k] ?? 0)) return 'update';
  return 'same';
}

function toxicBody(t: PlannedToxic): ICreateToxicBody<Record<string, number>> {
  return { name: t.name, type: t.type, stream: t.stream, toxicity: t.toxicity, attributes: t.attributes };
}

export class ToxiproxyReconciler {
  private readonly opts: ReconcilerOptions;
  private readonly client: Toxiproxy;
  private desired = new Map<string, DesiredProxy>();
  /** Listen addresses of proxies that match the desired state as of the last run. */
  private synced = new Map<string, { host: string; port: number }>();
  private running = false;
  private requested = 0;
  private attempted = 0;
  private waiters: Array<{ gen: number; resolve: () => void }> = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private enabled = false;
  /** Counts of API writes, for tests and /stats: proof that a no-op run wrote nothing. */
  readonly writes = { proxiesCreated: 0, proxiesDeleted: 0, proxiesUpdated: 0, toxicsAdded: 0, toxicsUpdated: 0, toxicsRemoved: 0 };

  constructor(opts: ReconcilerOptions) {
    this.opts = opts;
    this.client = new Toxiproxy(opts.apiUrl);
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
    const api = this.client.getApi();
    const actual = (await api.get<Record<string, ActualProxy>>(`${this.opts.apiUrl}/proxies`)).data ?? {};
    const desired = this.desired;
    const synced = new Map<string, { host: string; port: number }>();

    for (const [name, want] of desired) {
      let got = actual[name];
      if (got && (got.upstream !== want.upstream || !got.enabled)) {
        await new Proxy(this.client, { ...got, toxics: [] }).update({ enabled: true, listen: got.listen, upstream: want.upstream });
        this.writes.proxiesUpdated++;
        got = { ...got, upstream: want.upstream, enabled: true };
      }
      if (!got) {
        const created = await this.client.createProxy({ name, listen: '127.0.0.1:0', upstream: want.upstream, enabled: true });
        this.writes.proxiesCreated++;
        this.opts.log.info({ proxy: name, listen: created.listen, upstream: want.upstream }, 'toxiproxy proxy created');
        got = { name, listen: created.listen, upstream: want.upstream, enabled: true, toxics: [] };
      }
      await this.syncToxics(got, want.toxics);
      const i = got.listen.lastIndexOf(':');
      synced.set(name, { host: got.listen.slice(0, i), port: Number(got.listen.slice(i + 1)) });
    }

    for (const [name, got] of Object.entries(actual)) {
      if (desired.has(name)) continue;
      if (this.opts.inUse(name)) {
        // Connections still flow through it: make it a clean pipe, delete it later.
        await this.syncToxics(got, []);
      } else {
        await new Proxy(this.client, { ...got, toxics: [] }).remove();
        this.writes.proxiesDeleted++;
        this.opts.log.info({ proxy: name }, 'toxiproxy proxy deleted');
      }
    }
    // Only publish addresses if the desired state did not move under us.
    if (this.desired === desired) this.synced = synced;
  }

  private async syncToxics(proxy: ActualProxy, want: PlannedToxic[]): Promise<void> {
    const path = `${this.opts.apiUrl}/proxies/${proxy.name}`;
    const api = this.client.getApi();
    const have = new Map(proxy.toxics.map((t) => [t.name, t]));
    for (const t of want) {
      const got = have.get(t.name);
      have.delete(t.name);
      const verdict = got ? sameToxic(t, got) : 'add';
      if (verdict === 'same') continue;
      if (verdict === 'update') {
        await new Toxic(api, path, toxicBody(t)).update(toxicBody(t));
        this.writes.toxicsUpdated++;
        continue;
      }
      if (verdict === 'replace') {
        await new Toxic(api, path, toxicBody(t)).remove();
        this.writes.toxicsRemoved++;
      }
      await new Proxy(this.client, { ...proxy, toxics: [] }).addToxic(toxicBody(t));
      this.writes.toxicsAdded++;
    }
    for (const stale of have.values()) {
      await api.delete(`${path}/toxics/${stale.name}`);
      this.writes.toxicsRemoved++;
    }
  }
}
