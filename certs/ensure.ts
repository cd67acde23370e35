// Idempotent on-disk certificate management: keep what is valid, renew what
// is about to expire, regenerate what is broken — and say which and why.
import { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, type Logger } from '../common/log.ts';
import { readIfExists, writeFileAtomic } from '../common/files.ts';
import { CERT_MODE, KEY_MODE } from './file-modes.ts';
import { inspectCa, inspectLeaf, type Verdict } from './inspect.ts';
import { servingNames } from './names.ts';
import { DEFAULT_CA_DAYS, DEFAULT_LEAF_DAYS, generateCa, issueServingCert, validateDays, type KeyPairPem } from './x509.ts';

/** Renew material this many days before it expires, unless told otherwise. */
export const DEFAULT_RENEW_WITHIN_DAYS = 30;

/** The file names inside the output directory (the kubernetes.io/tls Secret keys, plus the CA). */
export const FILE_NAMES = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

export interface CertPaths {
  dir: string;
  caCert: string;
  /** Kept so re-runs can re-issue the leaf under the same CA. Secret: never commit it (.gitignore has *.key). */
  caKey: string;
  cert: string;
  key: string;
}

/**
 * - `kept`: valid material was left untouched (byte-identical).
 * - `renewed`: usable material was replaced: it expires within the renewal
 *   window, its names changed, or (leaf) its CA was replaced. A renewed CA's
 *   predecessor is still valid, so it can stay in caBundles for a while.
 * - `created`: nothing usable existed (missing, unreadable, key mismatch, not
 *   issued by the CA, expired).
 */
export type Action = 'kept' | 'renewed' | 'created';

export interface EnsureOptions {
  dir: string;
  service: string;
  namespace: string;
  /** Extra SANs: DNS names or IPv4/IPv6 literals. */
  hosts?: readonly string[];
  /** Serving certificate validity in days (default 365). */
  days?: number;
  /** CA validity in days (default 3650); must be at least `days`. */
  caDays?: number;
  /** Replace material expiring within this many days (default 30). */
  renewWithinDays?: number;
  now?: Date;
  log?: Logger;
}

export interface EnsureResult {
  paths: CertPaths;
  ca: Action;
  leaf: Action;
  /** Why the CA / leaf was not kept (absent when kept). */
  reasons: { ca?: string; leaf?: string };
  caPem: string;
  certPem: string;
  keyPem: string;
}

export function certPaths(dir: string): CertPaths {
  return {
    dir,
    caCert: join(dir, FILE_NAMES.caCert),
    caKey: join(dir, FILE_NAMES.caKey),
    cert: join(dir, FILE_NAMES.cert),
    key: join(dir, FILE_NAMES.key),
  };
}

/**
 * Makes `dir` hold a valid CA and a serving certificate for the Service.
 *
 * Write order, for a webhook that watches the directory: each file is replaced
 * atomically, but a set of files cannot be, so the order is chosen so that every
 * intermediate state is safe or detectably incomplete:
 * 1. ca.key then ca.crt, before the leaf: trust in the new CA exists before
 *    any server presents a certificate from it.
 * 2. tls.key then tls.crt: tls.crt is written last and is the commit point.
 *    A reader that reloads on a tls.crt change finds the matching key already
 *    in place; a reader that sees the new key with the old certificate gets
 *    "key values mismatch" from tls.createSecureContext and must keep its
 *    current context until the next change.
 */
export async function ensureCertificates(options: EnsureOptions): Promise<EnsureResult> {
  const log = options.log ?? createLogger('certs');
  const now = options.now ?? new Date();
  const days = options.days ?? DEFAULT_LEAF_DAYS;
  const caDays = options.caDays ?? DEFAULT_CA_DAYS;
  const renewWithinDays = options.renewWithinDays ?? DEFAULT_RENEW_WITHIN_DAYS;
  validateDays(days, 'days');
  validateDays(caDays, 'caDays');
  if (!Number.isInteger(renewWithinDays) || renewWithinDays < 0) {
    throw new Error(`renewWithinDays must be a whole number ≥ 0, got ${renewWithinDays}`);
  }
  if (caDays < days) throw new Error(`the CA validity (${caDays} days) must be at least the certificate validity (${days} days)`);
  // Validates the Service, namespace and hosts before anything touches the disk.
  const names = servingNames(options.service, options.namespace, options.hosts);
  if (days <= renewWithinDays) {
    log.warn({ days, renewWithinDays }, 'certificate validity is within the renewal window: every run will renew it');
  }
  const renewWithinMs = renewWithinDays * 86_400_000;
  const paths = certPaths(options.dir);
  // 0700 when we create it: the directory holds the CA key.
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });

  const [caCertPem, caKeyPem, certPem, keyPem] = await Promise.all([paths.caCert, paths.caKey, paths.cert, paths.key].map(readIfExists));
  const caVerdict = inspectCa({ certName: FILE_NAMES.caCert, keyName: FILE_NAMES.caKey, certPem: caCertPem, keyPem: caKeyPem }, now, renewWithinMs);
  const leafFiles = { certName: FILE_NAMES.cert, keyName: FILE_NAMES.key, certPem, keyPem };

  let ca: KeyPairPem;
  let caAction: Action;
  let leafVerdict: Verdict;
  const reasons: EnsureResult['reasons'] = {};
  if (caVerdict.state === 'valid') {
    ca = { certPem: caCertPem!, keyPem: caKeyPem! };
    caAction = 'kept';
    leafVerdict = inspectLeaf(leafFiles, caVerdict.cert, names, now, renewWithinMs);
  } else {
    caAction = caVerdict.state === 'stale' ? 'renewed' : 'created';
    reasons.ca = caVerdict.reason;
    log.info({ file: paths.caCert, action: caAction, reason: caVerdict.reason }, `CA ${caAction}: ${caVerdict.reason}`);
    ca = await generateCa({ days: caDays, now });
    await writeFileAtomic(paths.caKey, ca.keyPem, KEY_MODE);
    await writeFileAtomic(paths.caCert, ca.certPem, CERT_MODE);
    // The leaf must be reissued under the new CA. Judge the old one (against
    // the old CA when it was readable) only to log the most useful reason and
    // to tell a renewal from a repair.
    const old = inspectLeaf(leafFiles, caVerdict.state === 'stale' ? caVerdict.cert : undefined, names, now, renewWithinMs);
    if (old.state === 'unusable') leafVerdict = old;
    else if (caVerdict.state === 'stale') leafVerdict = { state: 'stale', cert: old.cert, reason: 'its CA was renewed' };
    else leafVerdict = { state: 'unusable', reason: 'its CA was unusable and has been replaced' };
  }

  if (leafVerdict.state === 'valid') {
    return { paths, ca: caAction, leaf: 'kept', reasons, caPem: ca.certPem, certPem: certPem!, keyPem: keyPem! };
  }
  const leafAction: Action = leafVerdict.state === 'stale' ? 'renewed' : 'created';
  reasons.leaf = leafVerdict.reason;
  log.info({ file: paths.cert, action: leafAction, reason: leafVerdict.reason }, `serving certificate ${leafAction}: ${leafVerdict.reason}`);
  const leaf = await issueServingCert(ca, { service: options.service, namespace: options.namespace, hosts: options.hosts, days, now });
  await writeFileAtomic(paths.key, leaf.keyPem, KEY_MODE);
  await writeFileAtomic(paths.cert, leaf.certPem, CERT_MODE);
  log.info(
    { file: paths.cert, notAfter: new X509Certificate(leaf.certPem).validToDate.toISOString(), names: names.map((n) => (n.type === 'dns' ? n.name : n.address)) },
    'serving certificate written',
  );
  return { paths, ca: caAction, leaf: leafAction, reasons, caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem };
}
