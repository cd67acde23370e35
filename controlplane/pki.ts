// The API server's key material: a CA, the serving certificate it signs, the
// service-account token signing key, and static bearer tokens for the test
// users. Certificates come from certs/ (the same node-forge code that issues
// the webhook's), keys from OpenSSL through node:crypto.
import { generateKeyPair, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateCa, issueServingCert } from '../certs/index.ts';
import { NODE_NETWORK } from './node/config.ts';

/**
 * The users every local control plane knows (static tokens). `admin` is a
 * cluster admin; `alice` and `bob` are plain tenants, authorised only by the
 * RBAC bindings a test or the walkthrough gives their groups.
 */
export const USERS = {
  admin: { groups: ['system:masters'] },
  alice: { groups: ['tenant-shop'] },
  bob: { groups: ['tenant-pay'] },
} as const;
export type User = keyof typeof USERS;
export const USER_NAMES = Object.keys(USERS) as User[];

/**
 * The cluster's own components, by static token too: the identities their
 * bootstrap RBAC roles (system:kube-controller-manager, system:kube-scheduler,
 * system:node-proxier) and the Node authorizer (system:node:<name> in
 * system:nodes) expect. CoreDNS's role is created at start (coredns.ts).
 */
export const COMPONENTS = {
  'kube-controller-manager': { user: 'system:kube-controller-manager', groups: [] },
  'kube-scheduler': { user: 'system:kube-scheduler', groups: [] },
  'kube-proxy': { user: 'system:kube-proxy', groups: [] },
  kubelet: { user: 'system:node:faultline-node', groups: ['system:nodes'] },
  coredns: { user: 'system:coredns', groups: [] },
} as const satisfies Record<string, { user: string; groups: readonly string[] }>;
export type Component = keyof typeof COMPONENTS;
const COMPONENT_NAMES = Object.keys(COMPONENTS) as Component[];

/**
 * The first address of --service-cluster-ip-range, i.e. the in-cluster
 * `kubernetes` Service: clients in pods dial it, so it belongs in the SANs.
 */
export const SERVICE_CIDR = '10.0.0.0/24';
const KUBERNETES_SERVICE_IP = '10.0.0.1';

export interface ApiserverPki {
  caPem: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Public half: --service-account-key-file (verifies tokens). */
  saPublicKeyFile: string;
  /** Private half: --service-account-signing-key-file (issues tokens). */
  saSigningKeyFile: string;
  /** --token-auth-file. */
  tokenFile: string;
  tokens: Record<User, string>;
  componentTokens: Record<Component, string>;
  /** The CA's private key: signs the API server's kubelet client certificate (node mode). */
  caKeyFile: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);

export async function writeApiserverPki(dir: string): Promise<ApiserverPki> {
  const ca = await generateCa({ days: 30 });
  const [serving, sa] = await Promise.all([
    // service "kubernetes" in "default" yields kubernetes, kubernetes.default,
    // kubernetes.default.svc and kubernetes.default.svc.cluster.local.
    issueServingCert(ca, {
      service: 'kubernetes',
      namespace: 'default',
      // The node IP: kube-apiserver listens there when a node runs.
      hosts: ['127.0.0.1', 'localhost', KUBERNETES_SERVICE_IP, NODE_NETWORK.gateway],
      days: 30,
    }),
    generateKeyPairAsync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    }),
  ]);
  const newToken = () => randomBytes(24).toString('hex');
  const tokens = Object.fromEntries(USER_NAMES.map((u) => [u, newToken()])) as Record<User, string>;
  const componentTokens = Object.fromEntries(COMPONENT_NAMES.map((c) => [c, newToken()])) as Record<Component, string>;
  const pki: ApiserverPki = {
    caPem: ca.certPem,
    caFile: path.join(dir, 'ca.crt'),
    certFile: path.join(dir, 'apiserver.crt'),
    keyFile: path.join(dir, 'apiserver.key'),
    saPublicKeyFile: path.join(dir, 'sa.pub'),
    saSigningKeyFile: path.join(dir, 'sa.key'),
    tokenFile: path.join(dir, 'tokens.csv'),
    tokens,
    componentTokens,
    caKeyFile: path.join(dir, 'ca.key'),
  };
  // token-auth-file format: token,user,uid,"group1,group2"
  const tokenCsv = [
    ...USER_NAMES.map((u) => `${tokens[u]},${u},${u},"${USERS[u].groups.join(',')}"`),
    ...COMPONENT_NAMES.map((c) => {
      const { user, groups } = COMPONENTS[c];
      return `${componentTokens[c]},${user},${user},"${groups.join(',')}"`;
    }),
  ].join('\n');
  await Promise.all([
    writeFile(pki.caFile, ca.certPem),
    writeFile(pki.caKeyFile, ca.keyPem, { mode: 0o600 }),
    writeFile(pki.certFile, serving.certPem),
    writeFile(pki.keyFile, serving.keyPem, { mode: 0o600 }),
    writeFile(pki.saPublicKeyFile, sa.publicKey),
    writeFile(pki.saSigningKeyFile, sa.privateKey, { mode: 0o600 }),
    writeFile(pki.tokenFile, `${tokenCsv}\n`, { mode: 0o600 }),
  ]);
  return pki;
}
