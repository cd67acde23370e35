// Outbound faults name upstreams as the app does ("payments", "db.shop.svc"),
// but a captured connection only shows the address it was going to. This
// keeps, for every host the live plan names, the addresses it resolves to
// through the pod's own resolver (getaddrinfo: the pod's resolv.conf and
// /etc/hosts, as the app resolves them), re-resolved every `refreshMs` so
// the match follows a Service or endpoint that moves. A failed lookup keeps
// the last good answer: a DNS hiccup must not silently end a fault.
//
// A host may also be an IP literal or a CIDR ("10.20.0.0/16"), matched as is.

import dns from 'node:dns';
import net from 'node:net';
import type { Logger } from '../../common/log.ts';
import { unmapped } from './original-destination.ts';

export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => (await dns.promises.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export const DEFAULT_REFRESH_MS = 2_000;

/** An IP literal or CIDR as a matcher, or undefined for a name that needs DNS. */
export function literalMatcher(host: string): ((address: string) => boolean) | undefined {
  const [base, bits, ...rest] = host.split('/');
  const family = net.isIP(base ?? '');
  if (family === 0 || rest.length > 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new net.BlockList();
  if (bits === undefined) list.addAddress(base!, type);
  else {
    const prefix = Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
    list.addSubnet(base!, prefix, type);
  }
  return (address) => {
    const a = unmapped(address);
    const f = net.isIP(a);
    return f !== 0 && list.check(a, f === 4 ? 'ipv4' : 'ipv6');
  };
}

export class UpstreamNames {
  private readonly resolved = new Map<string, Set<string>>();
  private readonly literals = new Map<string, (address: string) => boolean>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly timer: NodeJS.Timeout;
  private readonly lookup: Lookup;
  private readonly log: Logger | undefined;

  constructor(opts: { lookup?: Lookup; refreshMs?: number; log?: Logger } = {}) {
    this.lookup = opts.lookup ?? systemLookup;
    this.log = opts.log;
    this.timer = setInterval(() => void this.refresh(), opts.refreshMs ?? DEFAULT_REFRESH_MS);
    this.timer.unref();
  }

  /** The hosts the plan names now: new ones are resolved at once, dropped ones forgotten. */
  track(hosts: Iterable<string>): Promise<void> {
    const want = new Set(hosts);
    for (const host of [...this.resolved.keys(), ...this.literals.keys()]) {
      if (!want.has(host)) {
        this.resolved.delete(host);
        this.literals.delete(host);
      }
    }
    const started: Array<Promise<void>> = [];
    for (const host of want) {
      if (this.resolved.has(host) || this.literals.has(host)) continue;
      const literal = literalMatcher(host);
      if (literal) {
        this.literals.set(host, literal);
        continue;
      }
      this.resolved.set(host, new Set());
      started.push(this.resolve(host));
    }
    return Promise.all(started).then(() => undefined);
  }

  /** Does `host` (as a policy names it) currently stand for `address`? */
  matches(host: string, address: string): boolean {
    const literal = this.literals.get(host);
    if (literal) return literal(address);
    return this.resolved.get(host)?.has(unmapped(address).toLowerCase()) ?? false;
  }

  /** The addresses a host resolves to now (for status and tests). */
  addressesOf(host: string): string[] {
    return [...(this.resolved.get(host) ?? [])];
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Re-resolves every tracked name; resolves once all answers are in. */
  refresh(): Promise<void> {
    return Promise.all([...this.resolved.keys()].map((h) => this.resolve(h))).then(() => undefined);
  }

  private resolve(host: string): Promise<void> {
    const running = this.pending.get(host);
    if (running) return running;
    const p = this.lookup(host)
      .then((addresses) => {
        // Dropped while resolving: stay dropped.
        if (this.resolved.has(host)) this.resolved.set(host, new Set(addresses.map((a) => unmapped(a).toLowerCase())));
      })
      .catch((err: unknown) => {
        this.log?.warn({ host, err: (err as Error).message }, 'upstream did not resolve; keeping its last addresses');
      })
      .finally(() => this.pending.delete(host));
    this.pending.set(host, p);
    return p;
  }
}
