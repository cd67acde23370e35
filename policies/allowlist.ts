// The tenant allowlist: who may author policies, which fault kinds they may
// use, and the limits those faults must stay within. Reports EVERY violation,
// so one denial tells the author everything to fix.

import { prometheusBase } from './abort-when.ts';
import type { DefaultedPolicySpec, DefaultedToxic } from './defaults.ts';
import { durationMs } from './duration.ts';
import { faultsOf } from './faults.ts';
import { stackedDelaysOver, toxicMs } from './pod-limits.ts';
import { parseTcRate } from './rate.ts';
import { child, index, type FieldError } from './field-error.ts';
import type { ChaosTenant, FaultKind, TenantLimits, TenantSubject } from './types.ts';
import { familyOf, FAULT_KINDS, PRIVILEGED_FAMILIES, TOXIC_ATTRIBUTES } from './vocabulary.ts';

/** The author, as the AdmissionReview's userInfo names them. */
export interface UserInfo {
  username: string;
  groups?: string[];
}

export type ViolationReason = 'subject' | 'kind' | 'privileged' | 'limit';

export interface Violation {
  reason: ViolationReason;
  /** Field at fault ("spec.http[0].delay.fixed"); "metadata" for the author. */
  path: string;
  /** The tenant's rule that was broken, as the tenant spells it. */
  limit: string;
  /** Self-contained sentence, e.g. for a status condition. */
  message: string;
  /** The fault kind, for kind and privileged violations. */
  kind?: FaultKind;
}

export function subjectName(s: TenantSubject, policyNamespace: string): string {
  return s.kind === 'ServiceAccount' ? `ServiceAccount ${s.namespace ?? policyNamespace}/${s.name}` : `${s.kind} ${s.name}`;
}

/** ServiceAccount subjects without a namespace mean "this name in the policy's namespace". */
export function isSubject(user: UserInfo, subjects: readonly TenantSubject[], policyNamespace: string): boolean {
  if (subjects.length === 0) return true;
  return subjects.some((s) => {
    switch (s.kind) {
      case 'User':
        return user.username === s.name;
      case 'Group':
        return (user.groups ?? []).includes(s.name);
      case 'ServiceAccount':
        return user.username === `system:serviceaccount:${s.namespace ?? policyNamespace}:${s.name}`;
    }
  });
}

/** `author` undefined skips the author check (offline checks that don't know who will apply). */
export function checkAllowlist(spec: DefaultedPolicySpec, tenant: ChaosTenant, author: UserInfo | undefined, namespace: string): Violation[] {
  return [
    ...subjectViolations(tenant, author, namespace),
    ...kindViolations(spec, tenant),
    ...limitViolations(spec, tenant),
    ...guardViolations(spec, tenant),
  ];
}

function subjectViolations(tenant: ChaosTenant, author: UserInfo | undefined, namespace: string): Violation[] {
  const subjects = tenant.spec.subjects ?? [];
  if (author === undefined || isSubject(author, subjects, namespace)) return [];
  const limit = subjects.map((s) => subjectName(s, namespace)).join(', ');
  const who = `user "${author.username}"${author.groups?.length ? ` (groups: ${author.groups.join(', ')})` : ''}`;
  return [{ reason: 'subject', path: 'metadata', limit, message: `${who} may not author policies (subjects: ${limit})` }];
}

function kindViolations(spec: DefaultedPolicySpec, tenant: ChaosTenant): Violation[] {
  const allowed = new Set(tenant.spec.allow.kinds);
  const allowedList = FAULT_KINDS.filter((k) => allowed.has(k)).join(', ') || 'none';
  const privileged = tenant.spec.allow.privileged === true;
  const violations: Violation[] = [];
  const reportedKinds = new Set<string>();
  const reportedFamilies = new Set<string>();
  for (const use of faultsOf(spec)) {
    if (!allowed.has(use.kind) && !reportedKinds.has(use.kind)) {
      reportedKinds.add(use.kind);
      violations.push({ reason: 'kind', path: use.path, limit: allowedList, kind: use.kind, message: `${use.path}: ${use.kind} is not allowed (allowed: ${allowedList})` });
    }
    const family = familyOf(use.kind);
    if (!privileged && PRIVILEGED_FAMILIES.includes(family) && !reportedFamilies.has(family)) {
      reportedFamilies.add(family);
      violations.push({ reason: 'privileged', path: use.section, limit: 'privileged: false', kind: use.kind, message: `${use.section}: ${family} faults need a privileged container, which the tenant does not allow` });
    }
  }
  return violations;
}

/** allow.requireAbortWhen: every policy carries a steady-state guard; allow.prometheusUrls: which Prometheus the reconciler may query for it. */
function guardViolations(spec: DefaultedPolicySpec, tenant: ChaosTenant): Violation[] {
  const violations: Violation[] = [];
  if (tenant.spec.allow.requireAbortWhen === true && spec.abortWhen === undefined) {
    violations.push({ reason: 'limit', path: 'spec.abortWhen', limit: 'requireAbortWhen: true', message: 'spec.abortWhen is required by the tenant (allow.requireAbortWhen): add a steady-state guard' });
  }
  const prom = spec.abortWhen?.prometheus;
  if (prom) {
    // The reconciler makes the request: an unlisted URL would let a tenant aim the webhook at any address.
    const allowed = (tenant.spec.allow.prometheusUrls ?? []).flatMap((u) => {
      const b = prometheusBase(u);
      return 'base' in b ? [b.base] : [];
    });
    const base = prometheusBase(prom.url);
    if ('base' in base && !allowed.includes(base.base)) {
      const limit = `prometheusUrls: [${allowed.join(', ')}]`;
      violations.push({ reason: 'limit', path: 'spec.abortWhen.prometheus.url', limit, message: `spec.abortWhen.prometheus.url: ${prom.url} is not a Prometheus the tenant allows (${allowed.length > 0 ? allowed.join(', ') : 'allow.prometheusUrls lists none'})` });
    }
  }
  return violations;
}

const ms = (text: string | number): number => (typeof text === 'number' ? text : durationMs(text));
const showTime = (v: string | number): string => (typeof v === 'number' ? `${v}ms` : v);
const showToxic = (t: DefaultedToxic, attr: 'delay' | 'timeout'): string => {
  const v = t[attr]!;
  return typeof v === 'number' ? `${v}${TOXIC_ATTRIBUTES[t.type].timeUnitMs === 1 ? 'ms' : 'µs'}` : v;
};

/** A limit broken at `path`; `message` reads after the path ("5s exceeds the tenant maximum of 2s"). */
interface LimitError extends FieldError {
  limit: string;
}
const exceeds = (path: string, shown: string, limit: string, what = 'maximum'): LimitError => ({ path, limit, message: `${shown} exceeds the tenant ${what} of ${limit}` });

/**
 * One rule per tenant limit, in the spirit of Chaos Mesh's per-type
 * Validate(root, path): each gets the defaulted spec, the limit's value and
 * the spec's path, and returns every field that breaks it. Rules run in this
 * order, so denials list violations in a stable order.
 */
type LimitRule<K extends keyof TenantLimits> = (spec: DefaultedPolicySpec, limit: NonNullable<TenantLimits[K]>, root: string) => LimitError[];
const LIMIT_RULES: { [K in keyof TenantLimits]-?: LimitRule<K> } = {
  maxDuration: (spec, max, root) => (ms(spec.duration) > ms(max) ? [exceeds(child(root, 'duration'), spec.duration, max)] : []),

  maxDelay: (spec, max, root) => {
    const out: LimitError[] = [];
    // `key` under `at` holds the delay; with a jitter the sum is blamed on `at`, which holds both.
    const check = (at: string, key: string, base: string | number, jitter: string | number | undefined): void => {
      const total = ms(base) + (jitter === undefined ? 0 : ms(jitter));
      if (total <= ms(max)) return;
      const withJitter = jitter !== undefined && ms(jitter) > 0;
      out.push(exceeds(withJitter ? at : child(at, key), withJitter ? `${showTime(base)} + jitter ${showTime(jitter)}` : showTime(base), max));
    };
    for (const family of ['http', 'grpc'] as const) {
      spec[family].forEach((f, i) => f.delay && check(child(index(child(root, family), i), 'delay'), 'fixed', f.delay.fixed, f.delay.jitter));
    }
    spec.tcp.forEach((f, i) => f.toxics.forEach((t, j) => {
      const at = index(child(index(child(root, 'tcp'), i), 'toxics'), j);
      if (t.type === 'latency' && t.latency !== undefined) check(at, 'latency', t.latency, t.jitter);
      // Every attribute that holds data back: slow_close's and slicer's delays (µs
      // as a number), and timeout's stall, where 0 would mean forever.
      if ((t.type === 'slow_close' || t.type === 'slicer') && toxicMs(t, 'delay') > ms(max)) out.push(exceeds(child(at, 'delay'), showToxic(t, 'delay'), max));
      if (t.type === 'timeout' && (toxicMs(t, 'timeout') === 0 || toxicMs(t, 'timeout') > ms(max)))
        out.push(exceeds(child(at, 'timeout'), toxicMs(t, 'timeout') === 0 ? '0 (stall until the peer closes)' : showToxic(t, 'timeout'), max));
    }));
    // Toxics chained on one upstream add up (L1); across policies the webhook checks the same sums.
    // The spec is the only (so the last) source: every sum has its candidateIndex.
    for (const s of stackedDelaysOver([{ chaosId: '', spec }], ms(max)))
      if (s.toxics > 1 && s.candidateIndex !== undefined)
        out.push(exceeds(index(child(root, 'tcp'), s.candidateIndex), `${s.what} of ${s.toxics} toxics on ${s.upstream} (${s.stream}) adds up to ${s.totalMs}ms, which`, max));
    if (spec.network?.delay) check(child(child(root, 'network'), 'delay'), 'latency', spec.network.delay.latency, spec.network.delay.jitter);
    spec.io.forEach((f, i) => check(index(child(root, 'io'), i), 'delay', f.delay, undefined));
    return out;
  },

  maxLossPercent: (spec, max, root) =>
    spec.network?.loss && spec.network.loss.percent > max ? [exceeds(child(child(child(root, 'network'), 'loss'), 'percent'), `${spec.network.loss.percent}%`, `${max}%`)] : [],

  abortCodes: (spec, codes, root) => {
    const limit = codes.join(', ') || 'none';
    const outside = (path: string, status: number | undefined): LimitError[] =>
      status === undefined || codes.includes(status) ? [] : [{ path, limit, message: `${status} is not among the tenant's abort codes (${limit})` }];
    return [
      ...spec.http.flatMap((f, i) => outside(child(child(index(child(root, 'http'), i), 'abort'), 'status'), f.abort?.status)),
      ...spec.grpc.flatMap((f, i) => outside(child(child(index(child(root, 'grpc'), i), 'abort'), 'httpStatus'), f.abort?.httpStatus)),
    ];
  },

  grpcAbortCodes: (spec, codes, root) => {
    const limit = codes.join(', ') || 'none';
    return spec.grpc.flatMap((f, i) =>
      f.abort?.code !== undefined && !codes.includes(f.abort.code)
        ? [{ path: child(child(index(child(root, 'grpc'), i), 'abort'), 'code'), limit, message: `${f.abort.code} is not among the tenant's gRPC abort codes (${limit})` }]
        : [],
    );
  },

  maxPercent: (spec, max, root) => {
    const out: LimitError[] = [];
    const check = (path: string, percent: number, shown = `${percent}%`): void => {
      if (percent > max) out.push(exceeds(path, shown, `${max}%`));
    };
    for (const family of ['http', 'grpc'] as const) {
      spec[family].forEach((f, i) => {
        const at = index(child(root, family), i);
        if (f.delay) check(child(child(at, 'delay'), 'percent'), f.delay.percent);
        if (f.abort) check(child(child(at, 'abort'), 'percent'), f.abort.percent);
      });
    }
    spec.tcp.forEach((f, i) => f.toxics.forEach((t, j) => check(child(index(child(index(child(root, 'tcp'), i), 'toxics'), j), 'toxicity'), t.toxicity * 100, `${t.toxicity} (${t.toxicity * 100}%)`)));
    for (const key of ['loss', 'duplicate', 'corrupt', 'reorder'] as const) {
      const p = spec.network?.[key];
      if (p) check(child(child(child(root, 'network'), key), 'percent'), p.percent);
    }
    spec.io.forEach((f, i) => check(child(index(child(root, 'io'), i), 'percent'), f.percent));
    return out;
  },

  maxPodPercent: (spec, max, root) => {
    const share = spec.mode.type === 'all' ? 100 : spec.mode.type === 'fixed-percent' ? spec.mode.value : undefined;
    // one/fixed depend on how many pods match; pickTargets caps them at selection time.
    if (share === undefined || share <= max) return [];
    return [exceeds(child(root, 'mode'), `${spec.mode.type}${spec.mode.type === 'all' ? '' : ` ${share}%`} (${share}% of the selected pods)`, `${max}%`)];
  },

  maxTimeOffset: (spec, max, root) =>
    spec.time && Math.abs(ms(spec.time.offset)) > ms(max) ? [exceeds(child(child(root, 'time'), 'offset'), spec.time.offset, `${max} either way`)] : [],

  minBandwidthKBps: (spec, min, root) => {
    const out: LimitError[] = [];
    const below = (path: string, shown: string): void => {
      out.push({ path, limit: `${min} KB/s`, message: `${shown} is below the tenant minimum bandwidth of ${min} KB/s` });
    };
    spec.tcp.forEach((f, i) => f.toxics.forEach((t, j) => {
      if (t.type === 'bandwidth' && t.rate !== undefined && t.rate < min) below(child(index(child(index(child(root, 'tcp'), i), 'toxics'), j), 'rate'), `${t.rate} KB/s`);
    }));
    if (spec.network?.rate !== undefined) {
      const rate = parseTcRate(spec.network.rate);
      // tc's bits/s to Toxiproxy's KB/s (1 KB = 1000 bytes).
      if ('bitsPerSec' in rate && rate.bitsPerSec / 8000 < min) below(child(child(root, 'network'), 'rate'), `${spec.network.rate} (${rate.bitsPerSec / 8000} KB/s)`);
    }
    return out;
  },

  // A long window reacts late: the guard judges only what the window holds.
  maxAbortWindow: (spec, max, root) =>
    (['errorRate', 'latency'] as const).flatMap((key) => {
      const window = spec.abortWhen?.[key]?.window;
      return window !== undefined && ms(window) > ms(max) ? [exceeds(child(child(child(root, 'abortWhen'), key), 'window'), window, max)] : [];
    }),
};

function limitViolations(spec: DefaultedPolicySpec, tenant: ChaosTenant): Violation[] {
  const limits = tenant.spec.allow.limits ?? {};
  return (Object.keys(LIMIT_RULES) as Array<keyof TenantLimits>).flatMap((name) => {
    const value = limits[name];
    if (value === undefined) return [];
    const rule = LIMIT_RULES[name] as LimitRule<typeof name>;
    return rule(spec, value as never, 'spec').map((e): Violation => ({ reason: 'limit', path: e.path, limit: e.limit, message: `${e.path} ${e.message}` }));
  });
}

/**
 * The one denial message the webhook and `faultline check` both print:
 * `tenant "shop" does not allow network.loss (allowed: http.delay, http.abort, tcp.latency);
 * spec.http[0].delay.fixed 5s exceeds the tenant maximum of 2s`.
 */
export function formatDenial(tenantName: string, violations: readonly Violation[]): string {
  const tenant = `tenant "${tenantName}"`;
  const clauses: string[] = [];
  for (const v of violations.filter((v) => v.reason === 'subject')) clauses.push(`${tenant} does not let ${v.message.replace(' may not author policies', ' author policies')}`);
  const kinds = violations.filter((v) => v.reason === 'kind');
  if (kinds.length > 0) clauses.push(`${tenant} does not allow ${kinds.map((v) => v.kind).join(', ')} (allowed: ${kinds[0]!.limit})`);
  const privileged = violations.filter((v) => v.reason === 'privileged');
  if (privileged.length > 0) {
    clauses.push(`${tenant} does not allow privileged faults (${privileged.map((v) => v.path).join(', ')} need${privileged.length === 1 ? 's' : ''} a privileged container)`);
  }
  const named = clauses.length > 0;
  for (const v of violations.filter((v) => v.reason === 'limit')) clauses.push(v.message);
  // Every denial names the tenant: limits alone get it up front.
  return named ? clauses.join('; ') : `${tenant}: ${clauses.join('; ')}`;
}
