import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';

export const CLUSTER_NAME = 'faultline';

/** The context name of `user` in its kubeconfig ("faultline-alice"). */
export function contextName(user: string): string {
  return `${CLUSTER_NAME}-${user}`;
}

/**
 * Writes `<dir>/<user>.kubeconfig`: one cluster (CA embedded, so the file can
 * be copied elsewhere), the user's (or component's) static bearer token, one context.
 */
export async function writeKubeconfig(dir: string, user: string, server: string, caPem: string, token: string): Promise<string> {
  const file = path.join(dir, `${user}.kubeconfig`);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CLUSTER_NAME, cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: contextName(user), context: { cluster: CLUSTER_NAME, user, namespace: 'default' } }],
    'current-context': contextName(user),
    preferences: {},
  };
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}
