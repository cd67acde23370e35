// Executes a write plan from secret-plan.ts: the Secret material after it.
// Generates keys (node:crypto) but does no cluster I/O.
import { mergeCaBundle } from './bundle.ts';
import { trustBundle, type Plan, type SecretMaterial } from './secret-plan.ts';
import { generateCa, issueServingCert } from './x509.ts';

export interface IssueOptions {
  service: string;
  namespace: string;
  hosts: readonly string[];
  /** Serving certificate / CA validity in days (certs/x509.ts defaults). */
  days?: number;
  caDays?: number;
  now: Date;
}

type WritePlan = Extract<Plan, { action: 'create' | 'rotate-ca' | 'issue-leaf' }>;

export async function renderMaterial(plan: WritePlan, current: SecretMaterial | undefined, opts: IssueOptions): Promise<Required<SecretMaterial>> {
  const leafOptions = { service: opts.service, namespace: opts.namespace, hosts: opts.hosts, days: opts.days, now: opts.now };
  switch (plan.action) {
    case 'create': {
      const ca = await generateCa({ days: opts.caDays, now: opts.now });
      const leaf = await issueServingCert(ca, leafOptions);
      return { caCert: ca.certPem, caKey: ca.keyPem, cert: leaf.certPem, key: leaf.keyPem, bundle: mergeCaBundle(undefined, ca.certPem, opts.now) };
    }
    case 'rotate-ca': {
      const { cert, key } = required(current, plan.action);
      const ca = await generateCa({ days: opts.caDays, now: opts.now });
      // The serving certificate is deliberately left alone: see Plan['rotate-ca'].
      return { caCert: ca.certPem, caKey: ca.keyPem, cert, key, bundle: mergeCaBundle(trustBundle(current!, opts.now), ca.certPem, opts.now) };
    }
    case 'issue-leaf': {
      const { caCert, caKey } = required(current, plan.action);
      const leaf = await issueServingCert({ certPem: caCert, keyPem: caKey }, leafOptions);
      // Rewriting the bundle here also prunes CAs that expired since the last write.
      return { caCert, caKey, cert: leaf.certPem, key: leaf.keyPem, bundle: trustBundle(current!, opts.now) };
    }
  }
}

function required(material: SecretMaterial | undefined, action: string): { caCert: string; caKey: string; cert: string; key: string } {
  const { caCert, caKey, cert, key } = material ?? {};
  // planSecret() only plans these actions for a Secret with a usable CA; a
  // missing key here is a programming error, not a cluster state.
  if (caCert === undefined || caKey === undefined) throw new Error(`${action} needs the Secret's CA`);
  return { caCert, caKey, cert: cert ?? '', key: key ?? '' };
}
