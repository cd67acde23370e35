// What kube-apiserver's ServiceAccount admission plugin does to a pod before
// any mutating webhook sees it: unless the pod opts out
// (automountServiceAccountToken: false; a ServiceAccount's own opt-out is
// `saAutomount`), it adds a kube-api-access-* projected volume and mounts it
// in every container that has nothing at the token path. Unit tests feed the
// webhook pods as the apiserver would; test/e2e checks the real plugin.
import type { V1Pod } from '@kubernetes/client-node';

const TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

export function admittedByServiceAccountPlugin(pod: V1Pod, saAutomount = true): V1Pod {
  const out = structuredClone(pod);
  const spec = out.spec;
  if (!spec || (spec.automountServiceAccountToken ?? saAutomount) === false) return out;
  const name = 'kube-api-access-t0k3n';
  spec.volumes = [
    ...(spec.volumes ?? []),
    { name, projected: { defaultMode: 0o644, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } },
  ];
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    if ((c.volumeMounts ?? []).some((m) => m.mountPath === TOKEN_PATH)) continue;
    c.volumeMounts = [...(c.volumeMounts ?? []), { name, mountPath: TOKEN_PATH, readOnly: true }];
  }
  return out;
}
