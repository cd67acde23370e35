// Builders for plan entries in datapath tests: a minute of life unless told otherwise.

import type { PlannedHttpFault, PlannedTcpFault, PlannedToxic } from '../../contract/plans.ts';

export function httpFault(f: Partial<PlannedHttpFault> & Pick<PlannedHttpFault, 'name'>): PlannedHttpFault {
  return { chaosId: 'shop/test', expiresAt: Date.now() + 60_000, direction: 'inbound', match: {}, ...f };
}

export function tcpFault(port: number, toxics: Array<Partial<PlannedToxic> & Pick<PlannedToxic, 'type' | 'attributes'>>, f: Partial<PlannedTcpFault> = {}): PlannedTcpFault {
  return {
    chaosId: 'shop/test',
    expiresAt: Date.now() + 60_000,
    direction: 'inbound',
    port,
    toxics: toxics.map((t) => ({ name: t.name ?? t.type, stream: t.stream ?? 'downstream', toxicity: t.toxicity ?? 1, ...t })),
    ...f,
  };
}

/** Two-sided binomial acceptance band (±z standard deviations) for n trials at probability p. */
export function binomialBand(n: number, p: number, z = 4): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [n * p - z * sd, n * p + z * sd];
}
