// Lease-based leader election (coordination.k8s.io/v1), client-go's algorithm
// in small: every replica serves admission, only the lease holder runs the
// singletons (the status and RoleBinding reconciler).
//
// The decision is a pure function over what was observed; the elector around
// it only reads and writes the Lease. Expiry is measured on the local clock
// from when the record last changed, never from the holder's renewTime, so
// clock skew between nodes cannot make two replicas lead at once.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../common/log.ts';
import { errorMessage } from './api-error.ts';

/** The Lease the shipped RBAC (Role faultline-webhook-leader-election) lets the webhook write. */
export const LEASE_NAME = 'faultline-webhook';

export interface LeaseTiming {
  /** How long a lease holds without renewal. */
  leaseDurationMs: number;
  /** A leader that could not renew for this long steps down (< leaseDurationMs). */
  renewDeadlineMs: number;
  /** Interval between renewals / acquisition attempts. */
  retryPeriodMs: number;
}

export const DEFAULT_TIMING: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 5_000 };

/** The lease record as the decision needs it. */
export interface LeaseRecord {
  holder: string;
  leaseDurationSeconds: number;
  transitions: number;
  /** Changes on every write: a renewal is a new version even with the same holder. */
  resourceVersion: string;
}

export interface Observation {
  record: LeaseRecord | undefined;
  /** Local time the record was first seen in its current version. */
  observedAt: number;
}

export type LeaseDecision =
  | { action: 'create' }
  | { action: 'renew' }
  /** Take over: the lease is free or its holder stopped renewing. */
  | { action: 'acquire'; transitions: number }
  | { action: 'follow'; holder: string; expiresAt: number };

export function decideLease(observed: Observation, identity: string, now: number): LeaseDecision {
  const { record, observedAt } = observed;
  if (record === undefined) return { action: 'create' };
  if (record.holder === identity) return { action: 'renew' };
  const expiresAt = observedAt + record.leaseDurationSeconds * 1000;
  if (record.holder === '' || now >= expiresAt) return { action: 'acquire', transitions: record.transitions + 1 };
  return { action: 'follow', holder: record.holder, expiresAt };
}

/** A leader keeps leading only while its last successful renewal is recent enough. */
export function mustStepDown(lastRenewedAt: number, now: number, timing: LeaseTiming): boolean {
  return now - lastRenewedAt >= timing.renewDeadlineMs;
}

/** Keeps `previous.observedAt` while the record is the same version; restarts the clock when it changed. */
export function observe(previous: Observation | undefined, record: LeaseRecord | undefined, now: number): Observation {
  if (previous && previous.record?.resourceVersion === record?.resourceVersion && previous.record?.holder === record?.holder)
    return previous;
  return { record, observedAt: now };
}

export interface LeaderCallbacks {
  onStartedLeading(): void;
  onStoppedLeading(): void;
}

export interface LeaderElector {
  readonly identity: string;
  readonly isLeader: boolean;
  /** Stops campaigning; a leader releases the lease so a successor need not wait out its duration. */
  stop(): Promise<void>;
}

export interface ElectorOptions extends LeaderCallbacks {
  kubeConfig: KubeConfig;
  namespace: string;
  log: Logger;
  timing?: LeaseTiming;
  name?: string;
}

export function startLeaderElection(opts: ElectorOptions): LeaderElector {
  const api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
  const timing = opts.timing ?? DEFAULT_TIMING;
  const name = opts.name ?? LEASE_NAME;
  const { namespace, log } = opts;
  const identity = `${process.env.POD_NAME ?? hostname()}_${randomBytes(4).toString('hex')}`;
  let leading = false;
  let stopped = false;
  let lastRenewedAt = 0;
  let observation: Observation | undefined;
  let current: V1Lease | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastError = '';
  let inflight: Promise<void> | undefined;

  const spec = (transitions: number, acquire: boolean): V1Lease['spec'] => {
    const now = new V1MicroTime(Date.now());
    return {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(timing.leaseDurationMs / 1000),
      leaseTransitions: transitions,
      renewTime: now,
      ...(acquire ? { acquireTime: now } : { acquireTime: current?.spec?.acquireTime }),
    };
  };

  const setLeading = (value: boolean): void => {
    if (value === leading) return;
    leading = value;
    log.info({ lease: `${namespace}/${name}`, identity }, value ? 'became leader' : 'stopped leading');
    if (value) opts.onStartedLeading();
    else opts.onStoppedLeading();
  };

  async function tick(): Promise<void> {
    const now = Date.now();
    try {
      current = await api.readNamespacedLease({ name, namespace }).catch((err: unknown) => {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      });
      observation = observe(observation, toRecord(current), now);
      const decision = decideLease(observation, identity, now);
      switch (decision.action) {
        case 'create':
          current = await api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: spec(0, true) } });
          break;
        case 'renew':
        case 'acquire':
          // resourceVersion makes this a compare-and-swap: of two replicas seeing the lease expire, one wins, the other gets 409.
          current = await api.replaceNamespacedLease({
            name,
            namespace,
            body: { ...current!, spec: spec(decision.action === 'acquire' ? decision.transitions : (current!.spec?.leaseTransitions ?? 0), decision.action === 'acquire') },
          });
          break;
        case 'follow':
          if (leading) log.warn({ holder: decision.holder }, 'lease taken by another replica');
          setLeading(false);
          return;
      }
      lastRenewedAt = Date.now();
      observation = observe(observation, toRecord(current), lastRenewedAt);
      lastError = '';
      if (!stopped) setLeading(true);
    } catch (err) {
      const message = errorMessage(err);
      // Logged once per distinct error: a missing namespace would otherwise log every retry period.
      if (message !== lastError) log.warn({ lease: `${namespace}/${name}`, err: message }, 'leader election: lease update failed');
      lastError = message;
      if (leading && mustStepDown(lastRenewedAt, Date.now(), timing)) setLeading(false);
    }
  }

  const loop = async (): Promise<void> => {
    inflight = tick();
    await inflight;
    // Followers poll faster than leaders renew, to take over soon after a release.
    if (!stopped) timer = setTimeout(() => void loop(), leading ? timing.retryPeriodMs : Math.min(timing.retryPeriodMs, 2_000));
  };
  void loop();

  return {
    identity,
    get isLeader() {
      return leading;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inflight;
      setLeading(false);
      if (!current || current.spec?.holderIdentity !== identity) return;
      // client-go's ReleaseOnCancel: an empty holder lets the next replica take over at once.
      await api
        .replaceNamespacedLease({ name, namespace, body: { ...current, spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1 } } })
        .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not release the lease'));
    },
  };
}

function toRecord(lease: V1Lease | undefined): LeaseRecord | undefined {
  if (!lease) return undefined;
  return {
    holder: lease.spec?.holderIdentity ?? '',
    leaseDurationSeconds: lease.spec?.leaseDurationSeconds ?? 15,
    transitions: lease.spec?.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion ?? '',
  };
}
