// An in-memory ClusterView for admission and reconciler unit tests (the same
// read interface the informer cache implements), and AdmissionReview builders
// for ChaosPolicy / ChaosTenant requests.
import { randomUUID } from 'node:crypto';
import type { NamespaceInfo } from '../../policies/tenancy.ts';
import type { ChaosPolicy, ChaosTenant } from '../../policies/types.ts';
import { API_GROUP, API_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../../policies/wellknown.ts';
import type { AdmissionRequest } from '../../webhook/admission.ts';
import type { ClusterView, PodMeta } from '../../webhook/cache/cluster-cache.ts';
import { admittedIn, PolicyIndex, type AdmittedPolicies } from '../../webhook/cache/policy-index.ts';

export class FakeCluster implements ClusterView {
  namespaceList: NamespaceInfo[] = [];
  tenantList: ChaosTenant[] = [];
  policyList: ChaosPolicy[] = [];
  podList: PodMeta[] = [];

  withNamespace(name: string, chaos = true, labels: Record<string, string> = {}): this {
    this.namespaceList.push({ name, labels: { ...labels, ...(chaos ? { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } : {}) } });
    return this;
  }
  withTenant(t: ChaosTenant): this {
    this.tenantList.push(t);
    return this;
  }
  withPolicy(p: ChaosPolicy): this {
    this.policyList.push(p);
    return this;
  }
  withPod(name: string, labels: Record<string, string>, extra: Partial<PodMeta> = {}): this {
    this.podList.push({ name, namespace: 'shop', labels, phase: 'Running', injected: true, kernelChaosIds: [], ...extra });
    return this;
  }

  namespace(name: string): NamespaceInfo | undefined {
    return this.namespaceList.find((n) => n.name === name);
  }
  namespaces(): NamespaceInfo[] {
    return [...this.namespaceList];
  }
  tenants(): ChaosTenant[] {
    return [...this.tenantList];
  }
  policies(namespace: string): ChaosPolicy[] {
    return this.policyList.filter((p) => p.metadata.namespace === namespace);
  }
  allPolicies(): ChaosPolicy[] {
    return [...this.policyList];
  }
  policy(namespace: string, name: string): ChaosPolicy | undefined {
    return this.policyList.find((p) => p.metadata.namespace === namespace && p.metadata.name === name);
  }
  pods(namespace: string): PodMeta[] {
    return this.podList.filter((p) => p.namespace === namespace);
  }
  /** Converted afresh on every call (no memo): the lists above may be edited in place between calls. */
  admittedPolicies(namespace: string): AdmittedPolicies {
    const index = new PolicyIndex();
    const tenants = this.tenantList.map((t) => index.convertTenant(t)).flatMap((t) => (t.valid ? [t.tenant] : []));
    return admittedIn(this.namespace(namespace) ?? { name: namespace }, tenants, this.policies(namespace).map((p) => index.convertPolicy(p)));
  }
}

export interface ReviewOptions {
  operation?: AdmissionRequest['operation'];
  user?: { username: string; groups?: string[] };
  oldObject?: unknown;
  subResource?: string;
}

function request(resource: string, kind: string, object: { metadata?: { name?: string; namespace?: string } }, opts: ReviewOptions): AdmissionRequest {
  const user = opts.user ?? { username: 'alice', groups: ['tenant-shop', 'system:authenticated'] };
  return {
    uid: randomUUID(),
    kind: { group: API_GROUP, version: API_VERSION, kind },
    resource: { group: API_GROUP, version: API_VERSION, resource },
    ...(opts.subResource !== undefined ? { subResource: opts.subResource } : {}),
    ...(object.metadata?.name !== undefined ? { name: object.metadata.name } : {}),
    ...(object.metadata?.namespace !== undefined ? { namespace: object.metadata.namespace } : {}),
    operation: opts.operation ?? 'CREATE',
    userInfo: user,
    object,
    ...(opts.oldObject !== undefined ? { oldObject: opts.oldObject } : {}),
  };
}

export function policyRequest(p: ChaosPolicy, opts: ReviewOptions = {}): AdmissionRequest {
  return request('chaospolicies', 'ChaosPolicy', p, opts);
}

export function tenantRequest(t: ChaosTenant, opts: ReviewOptions = {}): AdmissionRequest {
  return request('chaostenants', 'ChaosTenant', t, { user: { username: 'admin', groups: ['system:masters'] }, ...opts });
}
