// Self-managed certificates kept in one Secret: what a replica should do next,
// decided from the Secret's contents and the clock alone. Pure: no I/O, no key
// generation (secret-material.ts executes a plan, webhook/cert-controller.ts
// reads and writes the Secret).
//
// Why the Secret carries a trust bundle next to the CA: the caBundle that the
// webhook configurations must hold is then a function of the Secret alone, so
// every replica computes the same one (no two replicas fight over it), and a
// caBundle stripped by `kubectl replace` or a GitOps sync is restored with the
// previous CA still in it.
import { X509Certificate } from 'node:crypto';
import { certificateBlocks, mergeCaBundle } from './bundle.ts';
import { inspectCa, inspectLeaf } from './inspect.ts';
import type { SubjectAltName } from './names.ts';

/**
 * Secret data keys. The first four are the cert-manager layout (type
 * kubernetes.io/tls plus ca.crt; ca.key so any replica can issue). `ca.crt` is
 * the CA that issues new serving certificates; `ca-bundle.crt` is every CA
 * still to be trusted (the new one first), i.e. the caBundle to publish.
 */
export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key', bundle: 'ca-bundle.crt' } as const;

/** `kubectl annotate secret … faultline.dev/rotate=ca|leaf`: an early renewal, honoured by any replica and removed by the write that performs it. */
export const ROTATE_ANNOTATION = 'faultline.dev/rotate';
export type RotateRequest = 'ca' | 'leaf';

/** The PEM texts found in the Secret (undefined: key absent). */
export interface SecretMaterial {
  caCert?: string;
  caKey?: string;
  cert?: string;
  key?: string;
  bundle?: string;
}

export interface PlanInput {
  /** undefined: the Secret does not exist. */
  material: SecretMaterial | undefined;
  /** The value of the rotate annotation, if any (anything but "ca"/"leaf" is ignored; the caller warns). */
  rotate?: string | undefined;
  /** The names the serving certificate must carry. */
  names: readonly SubjectAltName[];
  now: Date;
  /** Renew a certificate (CA or leaf) that expires within this many milliseconds. */
  renewBeforeMs: number;
  /**
   * How long this replica has seen the current `ca.crt` in the caBundle of
   * every webhook configuration (undefined: not seen there yet).
   */
  caPublishedForMs: number | undefined;
  /**
   * How long a new CA must have been published before a certificate it signed
   * is served: API servers pick up webhook configuration changes through an
   * informer, and an HA control plane has several of them.
   */
  propagationDelayMs: number;
}

export type Plan =
  /** Nothing to write. */
  | { action: 'keep' }
  /** Nothing usable exists: a new CA and serving certificate, with nothing else trusted. */
  | { action: 'create'; reason: string }
  /**
   * Stage a new CA: it becomes `ca.crt`/`ca.key` and joins `ca-bundle.crt`,
   * while `tls.crt` stays the one signed by the old CA. The serving
   * certificate moves over (issue-leaf) only once the new CA is published.
   */
  | { action: 'rotate-ca'; reason: string }
  /** A new serving certificate from `ca.crt`. */
  | { action: 'issue-leaf'; reason: string }
  /** The serving certificate must move to a new CA that API servers may not trust yet; retry after `retryInMs`. */
  | { action: 'wait'; reason: string; retryInMs: number };

export function parseRotateRequest(value: string | undefined): RotateRequest | undefined {
  return value === 'ca' || value === 'leaf' ? value : undefined;
}

export function planSecret(input: PlanInput): Plan {
  const { material, names, now, renewBeforeMs } = input;
  if (material === undefined) return { action: 'create', reason: 'the Secret does not exist' };
  const ca = inspectCa(pair(material.caCert, material.caKey, SECRET_KEYS.caCert, SECRET_KEYS.caKey), now, renewBeforeMs);
  // An unusable CA (corrupt, mismatched key, expired) can sign nothing that
  // anyone trusts, so nothing in the Secret is worth preserving.
  if (ca.state === 'unusable') return { action: 'create', reason: ca.reason };
  const request = parseRotateRequest(input.rotate);
  if (request === 'ca') return { action: 'rotate-ca', reason: `requested by annotation ${ROTATE_ANNOTATION}=ca` };
  if (ca.state === 'stale') return { action: 'rotate-ca', reason: ca.reason };

  const leafFiles = pair(material.cert, material.key, SECRET_KEYS.cert, SECRET_KEYS.key);
  const leaf = inspectLeaf(leafFiles, ca.cert, names, now, renewBeforeMs);
  if (leaf.state === 'unusable' && isSoundLeafOfAnotherCa(material, names, now)) {
    // The CA was rotated and the serving certificate still comes from its
    // predecessor, which every API server trusts: move only once they trust
    // the new CA too, or reviews would fail TLS verification in between.
    const publishedFor = input.caPublishedForMs ?? 0;
    if (input.caPublishedForMs === undefined || publishedFor < input.propagationDelayMs) {
      return {
        action: 'wait',
        reason: `the serving certificate moves to the new CA once the caBundle has carried it for ${input.propagationDelayMs} ms`,
        retryInMs: input.propagationDelayMs - publishedFor,
      };
    }
    return { action: 'issue-leaf', reason: `${SECRET_KEYS.cert} is signed by the previous CA, and the new one is published` };
  }
  if (leaf.state !== 'valid') return { action: 'issue-leaf', reason: leaf.reason };
  if (request === 'leaf') return { action: 'issue-leaf', reason: `requested by annotation ${ROTATE_ANNOTATION}=leaf` };
  return { action: 'keep' };
}

/**
 * The caBundle to publish: `ca.crt` first, then every other CA of
 * `ca-bundle.crt` that has not expired at `now`. A previous CA therefore stays
 * trusted until it expires — the simplest rule that is correct without knowing
 * which certificate each replica serves — and then drops out by itself.
 * Throws when `ca.crt` is missing or not a CA (planSecret() never keeps such a Secret).
 */
export function trustBundle(material: SecretMaterial, now: Date): string {
  if (material.caCert === undefined) throw new Error(`the Secret has no ${SECRET_KEYS.caCert}`);
  return mergeCaBundle(material.bundle, material.caCert, now);
}

function pair(certPem: string | undefined, keyPem: string | undefined, certName: string, keyName: string) {
  return { certName, keyName, certPem, keyPem };
}

/** A key-matched, unexpired serving certificate for `names`, signed by some CA other than `ca.crt`. */
function isSoundLeafOfAnotherCa(material: SecretMaterial, names: readonly SubjectAltName[], now: Date): boolean {
  const verdict = inspectLeaf(pair(material.cert, material.key, SECRET_KEYS.cert, SECRET_KEYS.key), undefined, names, now, 0);
  return verdict.state !== 'unusable' && signedByBundle(verdict.cert, material, now);
}

/** Is `cert` signed by a still-valid CA of the trust bundle, i.e. one API servers already trust? */
function signedByBundle(cert: X509Certificate, material: SecretMaterial, now: Date): boolean {
  return certificateBlocks(trustBundle(material, now))
    .map((block) => new X509Certificate(block))
    .some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}
