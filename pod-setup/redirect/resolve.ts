import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TrafficWiring } from '../../contract/plans.ts';
import type { ResolvedUpstream } from './nftables.ts';

export type Lookup = (host: string) => Promise<string[]>;

/** getaddrinfo, as the app itself will resolve the name (hosts file, search domains, DNS). */
export const systemLookup: Lookup = async (host) => (await lookup(host, { all: true })).map((a) => a.address);

export interface Resolution {
  upstreams: ResolvedUpstream[];
  /** Hosts that did not resolve; their rules match on the port alone. */
  unresolved: Array<{ host: string; reason: string }>;
}

/**
 * Resolves each upstream once, at pod start. Addresses that change later
 * (a Service's ClusterIP does not; a headless service's pods do) are not
 * followed: the port-only fallback covers names that cannot be pinned down.
 */
export async function resolveUpstreams(
  outbound: TrafficWiring['outbound'],
  resolve: Lookup = systemLookup,
  timeoutMs = 2000,
): Promise<Resolution> {
  const hosts = [...new Set(outbound.map((u) => u.host))];
  const answers = new Map<string, string[] | Error>();
  await Promise.all(
    hosts.map(async (host) => {
      if (isIP(host)) return answers.set(host, [host]);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        timer.unref();
      });
      try {
        answers.set(host, [...new Set(await Promise.race([resolve(host), timeout]))].sort());
      } catch (err) {
        answers.set(host, err as Error);
      } finally {
        clearTimeout(timer);
      }
      return undefined;
    }),
  );
  const unresolved: Resolution['unresolved'] = [];
  for (const [host, answer] of answers) if (answer instanceof Error) unresolved.push({ host, reason: answer.message });
  const upstreams = outbound.map((u) => {
    const answer = answers.get(u.host);
    return { ...u, addresses: Array.isArray(answer) ? answer : [] };
  });
  return { upstreams, unresolved };
}
