// The webhook's Prometheus metrics, on a private Registry: the global one would
// leak series between in-process servers (tests, benchmarks) and other modules.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WebhookMetrics {
  registry: Registry;
  reviews: Counter<'handler' | 'result'>;
  reviewDuration: Histogram<'handler'>;
  injections: Counter<'dry_run'>;
  skips: Counter<'reason' | 'dry_run'>;
  policyDenials: Counter<'tenant' | 'reason'>;
}

/** Tenants get a series each up to this many; later ones are counted as tenant="other". */
export const MAX_TENANT_SERIES = 200;

export function createMetrics(): WebhookMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    reviews: new Counter({
      name: 'faultline_admission_reviews_total',
      help: 'AdmissionReviews answered, by handler and result (allowed, patched, denied, skipped, bad_request, error).',
      labelNames: ['handler', 'result'],
      registers: [registry],
    }),
    reviewDuration: new Histogram({
      name: 'faultline_admission_review_duration_seconds',
      help: 'Time from request received to AdmissionReview answered (body parsing included).',
      labelNames: ['handler'],
      // A review normally takes well under a millisecond; the API server gives up at its timeout (<= 30s).
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    injections: new Counter({
      name: 'faultline_injections_total',
      help: 'Pods the proxy was injected into (dry_run="true": the API server will not persist the pod).',
      labelNames: ['dry_run'],
      registers: [registry],
    }),
    skips: new Counter({
      name: 'faultline_injection_skips_total',
      help: 'Pod CREATEs reviewed but not injected, by reason.',
      labelNames: ['reason', 'dry_run'],
      registers: [registry],
    }),
    policyDenials: new Counter({
      name: 'faultline_policy_denials_total',
      help: 'ChaosPolicy writes denied, by owning tenant ("" none; "other" past the series cap) and reason (paused, allowlist, stacking).',
      labelNames: ['tenant', 'reason'],
      registers: [registry],
    }),
  };
}
