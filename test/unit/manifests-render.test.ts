// The install manifests render (base and every overlay) and carry the
// properties Faultline's safety and security depend on. Each assertion names
// a property a careless edit could break without any other test noticing.
import assert from 'node:assert/strict';
import { IMAGES } from '../../common/images.ts';
import { API_GROUP, CHAOS_LABEL, CHAOS_LABEL_ENABLED, INJECT_OPT_OUT, NAMESPACE_NAME_LABEL, SYSTEM_NAMESPACE, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_NAMES } from '../../policies/wellknown.ts';
import { DEFAULT_PROXY_UID } from '../../contract/pod-layout.ts';
import { KUSTOMIZATIONS, field, find, podContainers, render, type K8sObject } from '../support/manifests-kustomize.ts';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}
interface Webhook {
  name: string;
  failurePolicy: string;
  timeoutSeconds: number;
  sideEffects: string;
  admissionReviewVersions: string[];
  clientConfig: { caBundle?: string; service: { name: string; namespace: string; path: string; port: number } };
  rules: Array<{ operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[] }>;
  namespaceSelector?: { matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
  objectSelector?: { matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
  reinvocationPolicy?: string;
  matchPolicy?: string;
}

const rulesOf = (o: K8sObject): Rule[] => (o.rules as Rule[] | undefined) ?? [];
const webhooksOf = (o: K8sObject): Webhook[] => (o.webhooks as Webhook[] | undefined) ?? [];
function webhook(objects: K8sObject[], kind: string, name: string): Webhook {
  const hit = webhooksOf(find(objects, kind, WEBHOOK_CONFIGURATION_NAME)).find((w) => w.name === name);
  assert.ok(hit, `${kind} ${WEBHOOK_CONFIGURATION_NAME} has no webhook ${name}`);
  return hit;
}

/** The RBAC rules granting `verb` on group/resource, from a role's rule list. */
function grants(rules: Rule[], group: string, resource: string, verb: string): Rule[] {
  return rules.filter(
    (r) =>
      (r.apiGroups ?? []).some((g) => g === group || g === '*') &&
      (r.resources ?? []).some((x) => x === resource || x === '*') &&
      r.verbs.some((v) => v === verb || v === '*'),
  );
}

describe('manifests: render and structure', function () {
  this.timeout(60_000);

  for (const dir of KUSTOMIZATIONS) {
    describe(dir, function () {
      let objects: K8sObject[];
      before(async function () {
        objects = await render(dir);
      });

      it('renders both CRDs, the namespace and the webhook with no duplicate objects', function () {
        const keys = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
        assert.equal(new Set(keys).size, keys.length, 'duplicate objects');
        find(objects, 'CustomResourceDefinition', `chaospolicies.${API_GROUP}`);
        find(objects, 'CustomResourceDefinition', `chaostenants.${API_GROUP}`);
        find(objects, 'Namespace', SYSTEM_NAMESPACE);
        find(objects, 'Deployment', 'faultline-webhook', SYSTEM_NAMESPACE);
        find(objects, 'Service', 'faultline-webhook', SYSTEM_NAMESPACE);
        find(objects, 'NetworkPolicy', 'faultline-webhook', SYSTEM_NAMESPACE);
        for (const o of objects)
          if (o.kind !== 'Namespace' && o.kind !== 'CustomResourceDefinition' && !o.kind.startsWith('Cluster') && !o.kind.endsWith('WebhookConfiguration') && !o.kind.startsWith('ValidatingAdmissionPolicy'))
            assert.equal(o.metadata.namespace, SYSTEM_NAMESPACE, `${o.kind}/${o.metadata.name} is namespaced into ${SYSTEM_NAMESPACE}`);
      });

      it('binds faultline-pod-security to chaos namespaces an admin has not exempted, denying when its parameters are missing (issue 13 H1)', function () {
        const binding = find(objects, 'ValidatingAdmissionPolicyBinding', 'faultline-pod-security') as unknown as {
          spec: { policyName: string; validationActions: string[]; paramRef: { name: string; namespace: string; parameterNotFoundAction: string }; matchResources: { namespaceSelector: unknown } };
        };
        assert.equal(binding.spec.policyName, 'faultline-pod-security');
        assert.deepEqual(binding.spec.validationActions, ['Deny']);
        assert.deepEqual(binding.spec.paramRef, { name: 'faultline-injection', namespace: SYSTEM_NAMESPACE, parameterNotFoundAction: 'Deny' });
        assert.deepEqual(binding.spec.matchResources.namespaceSelector, {
          matchExpressions: [
            { key: 'faultline.dev/chaos', operator: 'In', values: ['enabled'] },
            { key: 'faultline.dev/pod-security', operator: 'NotIn', values: ['privileged'] },
          ],
        });
        const policy = find(objects, 'ValidatingAdmissionPolicy', 'faultline-pod-security') as unknown as { spec: { failurePolicy: string } };
        assert.equal(policy.spec.failurePolicy, 'Fail');
        const params = find(objects, 'ConfigMap', 'faultline-injection', SYSTEM_NAMESPACE) as unknown as { data: Record<string, string> };
        assert.deepEqual(params.data, { proxyImage: IMAGES.proxy, initImage: IMAGES.init, proxyUid: String(DEFAULT_PROXY_UID) });
      });

      it('never intercepts policies or tenants being deleted (matchConditions; issue 13 M4)', function () {
        for (const name of [WEBHOOK_NAMES.validatePolicies, WEBHOOK_NAMES.validateTenants]) {
          const hook = webhook(objects, 'ValidatingWebhookConfiguration', name) as { matchConditions?: Array<{ name: string; expression: string }> };
          assert.deepEqual(hook.matchConditions?.[0], { name: 'not-being-deleted', expression: '!has(object.metadata.deletionTimestamp)' });
          // Tenants also skip it for an UPDATE that only throws or releases their pause switch (tested on the real API server in test/e2e/brakes.test.ts).
          assert.deepEqual(hook.matchConditions?.slice(1).map((c) => c.name), name === WEBHOOK_NAMES.validateTenants ? ['not-only-the-pause-switch'] : []);
        }
      });

      it('injects into opted-in namespaces only, never kube-system or its own, and fails open', function () {
        const pods = webhook(objects, 'MutatingWebhookConfiguration', WEBHOOK_NAMES.mutatePods);
        assert.equal(pods.failurePolicy, 'Ignore');
        assert.equal(pods.timeoutSeconds, 3);
        assert.equal(pods.sideEffects, 'None');
        assert.deepEqual(pods.admissionReviewVersions, ['v1']);
        assert.equal(pods.reinvocationPolicy, 'IfNeeded');
        assert.equal(pods.matchPolicy, 'Equivalent');
        assert.deepEqual(pods.rules, [
          { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
        ]);
        const ns = pods.namespaceSelector?.matchExpressions ?? [];
        assert.deepEqual(ns.find((e) => e.key === CHAOS_LABEL), { key: CHAOS_LABEL, operator: 'In', values: [CHAOS_LABEL_ENABLED] });
        const excluded = ns.find((e) => e.key === NAMESPACE_NAME_LABEL && e.operator === 'NotIn');
        assert.ok(excluded, 'namespaceSelector excludes namespaces by name');
        assert.deepEqual([...(excluded.values ?? [])].sort(), ['faultline-system', 'kube-system']);
        assert.deepEqual(pods.objectSelector?.matchExpressions, [{ key: INJECT_OPT_OUT, operator: 'NotIn', values: ['false'] }]);
        assert.deepEqual(pods.clientConfig.service, { name: 'faultline-webhook', namespace: SYSTEM_NAMESPACE, path: '/mutate/pods', port: 443 });
      });

      it('validates policies and tenants fail-closed', function () {
        const expected = [
          [WEBHOOK_NAMES.validatePolicies, 'chaospolicies', '/validate/chaospolicies'],
          [WEBHOOK_NAMES.validateTenants, 'chaostenants', '/validate/chaostenants'],
        ] as const;
        for (const [name, resource, path] of expected) {
          const w = webhook(objects, 'ValidatingWebhookConfiguration', name);
          assert.equal(w.failurePolicy, 'Fail', name);
          assert.equal(w.timeoutSeconds, 5, name);
          assert.equal(w.sideEffects, 'None', name);
          assert.equal(w.rules.length, 1, name);
          assert.deepEqual(w.rules[0]!.operations, ['CREATE', 'UPDATE'], name);
          assert.deepEqual(w.rules[0]!.apiGroups, [API_GROUP], name);
          assert.deepEqual(w.rules[0]!.resources, [resource], name);
          assert.equal(w.clientConfig.service.path, path, name);
          assert.equal(w.namespaceSelector, undefined, `${name}: a policy outside chaos namespaces must still be validated`);
        }
      });

      it('leaves caBundle to the runtime (self-managed) or to cainjector (cert-manager)', function () {
        for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
          const config = find(objects, kind, WEBHOOK_CONFIGURATION_NAME);
          for (const w of webhooksOf(config)) assert.equal(w.clientConfig.caBundle, undefined, `${kind} ${w.name}`);
          const inject = config.metadata.annotations?.['cert-manager.io/inject-ca-from'];
          assert.equal(inject, dir.endsWith('cert-manager') ? `${SYSTEM_NAMESPACE}/faultline-webhook` : undefined, kind);
        }
      });

      it('runs the webhook under the restricted Pod Security profile', function () {
        const nsLabels = find(objects, 'Namespace', SYSTEM_NAMESPACE).metadata.labels ?? {};
        assert.equal(nsLabels['pod-security.kubernetes.io/enforce'], 'restricted');
        const deployment = find(objects, 'Deployment', 'faultline-webhook');
        const pod = field(deployment, 'spec.template.spec') as Record<string, unknown>;
        assert.equal(field(pod, 'securityContext.runAsNonRoot'), true);
        assert.equal(field(pod, 'securityContext.seccompProfile.type'), 'RuntimeDefault');
        assert.notEqual(field(pod, 'securityContext.runAsUser'), 0);
        assert.equal(pod.hostNetwork, undefined);
        for (const c of podContainers(deployment)) {
          assert.equal(field(c, 'securityContext.allowPrivilegeEscalation'), false);
          assert.equal(field(c, 'securityContext.readOnlyRootFilesystem'), true);
          assert.deepEqual(field(c, 'securityContext.capabilities.drop'), ['ALL']);
          assert.equal(field(c, 'securityContext.capabilities.add'), undefined);
          assert.equal(field(c, 'securityContext.privileged'), undefined);
          for (const probe of ['livenessProbe', 'readinessProbe']) assert.equal(field(c, `${probe}.httpGet.scheme`), 'HTTPS', probe);
          assert.equal(field(c, 'livenessProbe.httpGet.path'), '/healthz');
          assert.equal(field(c, 'readinessProbe.httpGet.path'), '/readyz');
        }
        for (const v of (pod.volumes as Array<Record<string, unknown>>) ?? [])
          assert.equal(v.hostPath, undefined, `volume ${String(v.name)} is a hostPath`);
      });

      it('serves 443 -> 8443 and admits ingress to that port only', function () {
        const service = find(objects, 'Service', 'faultline-webhook');
        assert.deepEqual(
          (field(service, 'spec.ports') as Array<Record<string, unknown>>).map((p) => [p.port, p.targetPort]),
          [[443, 'https']],
        );
        const deployment = find(objects, 'Deployment', 'faultline-webhook');
        const ports = podContainers(deployment).flatMap((c) => (c.ports as Array<Record<string, unknown>>) ?? []);
        assert.deepEqual(ports.map((p) => [p.name, p.containerPort]), [['https', 8443]]);
        const np = find(objects, 'NetworkPolicy', 'faultline-webhook');
        assert.deepEqual(field(np, 'spec.podSelector.matchLabels'), field(deployment, 'spec.selector.matchLabels'));
        assert.deepEqual(field(np, 'spec.policyTypes'), ['Ingress']);
        const ingress = field(np, 'spec.ingress') as Array<{ ports: Array<{ port: number; protocol: string }> }>;
        assert.deepEqual(ingress.flatMap((r) => r.ports), [{ protocol: 'TCP', port: 8443 }]);
      });

      it('binds the sidecar role nowhere: the webhook binds it per namespace', function () {
        const sidecar = find(objects, 'ClusterRole', 'faultline-sidecar');
        assert.deepEqual(rulesOf(sidecar), [
          { apiGroups: [API_GROUP], resources: ['chaospolicies'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['events'], verbs: ['create', 'list', 'watch'] },
        ]);
        const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
        for (const b of bindings) assert.notEqual(field(b, 'roleRef.name'), 'faultline-sidecar', `${b.kind}/${b.metadata.name}`);
        // …and the webhook may bind exactly that role, and create/alter only the RoleBinding of that name.
        const rules = rulesOf(find(objects, 'ClusterRole', 'faultline-webhook'));
        const bind = grants(rules, 'rbac.authorization.k8s.io', 'clusterroles', 'bind');
        assert.deepEqual(bind.map((r) => r.resourceNames), [['faultline-sidecar']]);
        for (const verb of ['get', 'update', 'patch', 'delete'])
          for (const r of grants(rules, 'rbac.authorization.k8s.io', 'rolebindings', verb))
            assert.deepEqual(r.resourceNames, ['faultline-sidecar'], `rolebindings ${verb}`);
      });

      it('lets every service account read the pause switches and nothing else: one Namespace by name, ChaosTenants read-only', function () {
        const role = find(objects, 'ClusterRole', 'faultline-switches');
        assert.deepEqual(rulesOf(role), [
          { apiGroups: [''], resources: ['namespaces'], resourceNames: ['faultline-system'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [API_GROUP], resources: ['chaostenants'], verbs: ['get', 'list', 'watch'] },
        ]);
        const binding = find(objects, 'ClusterRoleBinding', 'faultline-switches');
        assert.equal(field(binding, 'roleRef.name'), 'faultline-switches');
        assert.deepEqual(field(binding, 'subjects'), [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:serviceaccounts' }]);
      });

      it('grants the webhook nothing wildcarded and narrows writes by resourceNames', function () {
        const webhookSubjects = (o: K8sObject): boolean =>
          ((o.subjects as Array<{ kind: string; name: string }> | undefined) ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === 'faultline-webhook');
        const roleNames = objects
          .filter((o) => (o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') && webhookSubjects(o))
          .map((b) => [b.kind === 'RoleBinding' ? 'Role' : 'ClusterRole', String(field(b, 'roleRef.name'))] as const);
        const rules = roleNames.flatMap(([kind, name]) => rulesOf(find(objects, kind, name)));
        for (const r of rules) {
          for (const list of [r.apiGroups ?? [], r.resources ?? [], r.verbs]) assert.ok(!list.includes('*'), JSON.stringify(r));
        }
        // The webhook never writes ChaosPolicy specs, only their status.
        for (const verb of ['create', 'update', 'patch', 'delete']) assert.deepEqual(grants(rules, API_GROUP, 'chaospolicies', verb), [], verb);
        assert.ok(grants(rules, API_GROUP, 'chaospolicies/status', 'patch').length > 0);
        // Secrets: no cluster-wide access; in faultline-system, only create is unnamed.
        const secretWriters = ['get', 'list', 'watch', 'update', 'patch', 'delete'].flatMap((v) => grants(rules, '', 'secrets', v));
        for (const r of secretWriters) assert.deepEqual(r.resourceNames, ['faultline-webhook-tls']);
        for (const [kind, name] of roleNames)
          if (kind === 'ClusterRole') assert.deepEqual(grants(rulesOf(find(objects, kind, name)), '', 'secrets', 'get'), [], name);
        // Webhook configurations: its own only.
        for (const verb of ['get', 'patch', 'update'])
          for (const r of [
            ...grants(rules, 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', verb),
            ...grants(rules, 'admissionregistration.k8s.io', 'validatingwebhookconfigurations', verb),
          ])
            assert.deepEqual(r.resourceNames, [WEBHOOK_CONFIGURATION_NAME], verb);
        const secretCreate = grants(rules, '', 'secrets', 'create').length > 0;
        // certs/patch.ts reads each configuration and replaces it with the resourceVersion read.
        const caWrite = ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'].every(
          (resource) => grants(rules, 'admissionregistration.k8s.io', resource, 'update').length > 0,
        );
        if (dir.endsWith('cert-manager')) {
          assert.ok(!secretCreate && !caWrite, 'with cert-manager the webhook must not write Secrets or caBundles');
        } else {
          assert.ok(secretCreate && caWrite, 'self-managed certificates need Secret create and caBundle update');
        }
      });

      it('gives tenants editor/viewer roles aggregated into edit/view, and tenant-admin to nobody by default', function () {
        const editor = find(objects, 'ClusterRole', 'faultline-tenant-editor');
        assert.equal(editor.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'], 'true');
        assert.ok(grants(rulesOf(editor), API_GROUP, 'chaospolicies', 'create').length > 0);
        assert.deepEqual(grants(rulesOf(editor), API_GROUP, 'chaospolicies/status', 'update'), [], 'status is the reconciler’s');
        assert.deepEqual(grants(rulesOf(editor), API_GROUP, 'chaostenants', 'get'), [], 'tenants are cluster-scoped, admin only');
        const viewer = find(objects, 'ClusterRole', 'faultline-tenant-viewer');
        assert.equal(viewer.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view'], 'true');
        for (const r of rulesOf(viewer)) assert.deepEqual(r.verbs.filter((v) => !['get', 'list', 'watch'].includes(v)), []);
        const admin = find(objects, 'ClusterRole', 'faultline-tenant-admin');
        assert.ok(grants(rulesOf(admin), API_GROUP, 'chaostenants', 'create').length > 0);
        assert.ok(!Object.keys(admin.metadata.labels ?? {}).some((l) => l.startsWith('rbac.authorization.k8s.io/aggregate-to')));
      });
    });
  }

  describe('per-install differences', function () {
    it('base: two spread replicas with a PodDisruptionBudget of one', async function () {
      const objects = await render('manifests');
      const deployment = find(objects, 'Deployment', 'faultline-webhook');
      assert.equal(field(deployment, 'spec.replicas'), 2);
      assert.equal(field(deployment, 'spec.strategy.rollingUpdate.maxUnavailable'), 0);
      const anti = field(deployment, 'spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0.podAffinityTerm');
      assert.equal(field(anti, 'topologyKey'), 'kubernetes.io/hostname');
      assert.deepEqual(field(anti, 'labelSelector.matchLabels'), field(deployment, 'spec.selector.matchLabels'));
      const pdb = find(objects, 'PodDisruptionBudget', 'faultline-webhook');
      assert.equal(field(pdb, 'spec.minAvailable'), 1);
      assert.deepEqual(field(pdb, 'spec.selector.matchLabels'), field(deployment, 'spec.selector.matchLabels'));
      assert.deepEqual(field(deployment, 'spec.template.spec.containers.0.args'), [
        'webhook',
        '--port=8443',
        '--cert-dir=/var/run/faultline/tls',
        `--cert-secret=${SYSTEM_NAMESPACE}/faultline-webhook-tls`,
      ]);
      assert.ok(field(deployment, 'spec.template.spec.volumes.0.emptyDir'), 'self-managed: cert dir is an emptyDir');
    });

    it('dev: one replica, no PodDisruptionBudget (it would block every drain)', async function () {
      const objects = await render('manifests/overlays/dev');
      const deployment = find(objects, 'Deployment', 'faultline-webhook');
      assert.equal(field(deployment, 'spec.replicas'), 1);
      assert.equal(field(deployment, 'spec.template.spec.affinity'), undefined);
      assert.equal(objects.filter((o) => o.kind === 'PodDisruptionBudget').length, 0);
    });

    it('cert-manager: CA chain, Secret mounted as the cert dir, no self-management', async function () {
      const objects = await render('manifests/overlays/cert-manager');
      const serving = find(objects, 'Certificate', 'faultline-webhook', SYSTEM_NAMESPACE);
      assert.equal(field(serving, 'spec.secretName'), 'faultline-webhook-tls');
      assert.ok((field(serving, 'spec.dnsNames') as string[]).includes(`faultline-webhook.${SYSTEM_NAMESPACE}.svc`));
      const caIssuer = find(objects, 'Issuer', String(field(serving, 'spec.issuerRef.name')), SYSTEM_NAMESPACE);
      const ca = objects.find((o) => o.kind === 'Certificate' && field(o, 'spec.secretName') === field(caIssuer, 'spec.ca.secretName'));
      assert.ok(ca, 'the CA Issuer reads a Certificate’s Secret');
      assert.equal(field(ca, 'spec.isCA'), true);
      find(objects, 'Issuer', String(field(ca, 'spec.issuerRef.name')), SYSTEM_NAMESPACE);

      const deployment = find(objects, 'Deployment', 'faultline-webhook');
      const args = field(deployment, 'spec.template.spec.containers.0.args') as string[];
      assert.ok(!args.some((a) => a.startsWith('--cert-secret')), 'cert-manager owns the Secret');
      assert.ok(args.includes('--cert-dir=/var/run/faultline/tls'));
      const volumes = field(deployment, 'spec.template.spec.volumes') as Array<Record<string, unknown>>;
      assert.equal(volumes.length, 1);
      assert.deepEqual(Object.keys(volumes[0]!).sort(), ['name', 'secret'], 'exactly one volume source');
      assert.equal(field(volumes[0], 'secret.secretName'), 'faultline-webhook-tls');
      assert.equal(field(deployment, 'spec.replicas'), 2);
    });
  });
});
