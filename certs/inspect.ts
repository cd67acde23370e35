// Decides whether key material found on disk can be kept. Pure: takes file
// contents, returns a verdict with a human reason; parsing is done by
// node:crypto (OpenSSL), independent of the forge code that generated it.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { parseHost, sameNames, type SubjectAltName } from './names.ts';

/**
 * - `valid`: keep it.
 * - `stale`: usable now but must be replaced (expiring, or names changed); the
 *   replacement counts as a renewal.
 * - `unusable`: missing, unreadable, mismatched, expired or not yet valid.
 */
export type Verdict = { state: 'valid'; cert: X509Certificate } | { state: 'stale'; cert: X509Certificate; reason: string } | { state: 'unusable'; reason: string };

export interface Files {
  /** File names as shown in reasons (e.g. "ca.crt"). */
  certName: string;
  keyName: string;
  certPem: string | undefined;
  keyPem: string | undefined;
}

/** A CA pair: a CA certificate, its key, currently valid and not expiring within `renewWithinMs`. */
export function inspectCa(files: Files, now: Date, renewWithinMs: number): Verdict {
  const pair = loadPair(files);
  if ('reason' in pair) return { state: 'unusable', reason: pair.reason };
  const { cert } = pair;
  if (!cert.ca) return { state: 'unusable', reason: `${files.certName} is not a CA certificate (basicConstraints CA:FALSE)` };
  return checkValidity(cert, files.certName, now, renewWithinMs);
}

/**
 * A serving pair: issued by `ca`, carrying exactly `names`, currently valid and
 * not expiring within `renewWithinMs`. Without `ca` (the CA itself is
 * unusable) the issuer is not checked: only the pair's own soundness is judged.
 */
export function inspectLeaf(files: Files, ca: X509Certificate | undefined, names: readonly SubjectAltName[], now: Date, renewWithinMs: number): Verdict {
  const pair = loadPair(files);
  if ('reason' in pair) return { state: 'unusable', reason: pair.reason };
  const { cert } = pair;
  if (ca && (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))) {
    return { state: 'unusable', reason: `${files.certName} is not signed by the CA (${ca.subject.replace(/\n/g, ', ')})` };
  }
  const validity = checkValidity(cert, files.certName, now, renewWithinMs);
  if (validity.state === 'unusable') return validity;
  const have = certificateNames(cert);
  if (!sameNames(have, names)) {
    return {
      state: 'stale',
      cert,
      reason: `${files.certName} names changed: has [${have.map(show).join(', ')}], want [${names.map(show).join(', ')}]`,
    };
  }
  return validity;
}

function loadPair(files: Files): { cert: X509Certificate; key: KeyObject } | { reason: string } {
  if (files.certPem === undefined && files.keyPem === undefined) return { reason: `${files.certName} and ${files.keyName} do not exist` };
  if (files.certPem === undefined) return { reason: `${files.certName} does not exist` };
  if (files.keyPem === undefined) return { reason: `${files.keyName} does not exist` };
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(files.certPem);
  } catch (err) {
    return { reason: `${files.certName} is not a readable PEM certificate (${(err as Error).message})` };
  }
  try {
    key = createPrivateKey(files.keyPem);
  } catch (err) {
    return { reason: `${files.keyName} is not a readable PEM private key (${(err as Error).message})` };
  }
  if (!cert.checkPrivateKey(key)) return { reason: `${files.keyName} does not match ${files.certName}` };
  return { cert, key };
}

function checkValidity(cert: X509Certificate, name: string, now: Date, renewWithinMs: number): Verdict {
  if (cert.validFromDate > now) return { state: 'unusable', reason: `${name} is not valid before ${cert.validFromDate.toISOString()}` };
  if (cert.validToDate <= now) return { state: 'unusable', reason: `${name} expired on ${cert.validToDate.toISOString()}` };
  if (cert.validToDate.getTime() - now.getTime() <= renewWithinMs) {
    const days = Math.round(renewWithinMs / 86_400_000);
    return { state: 'stale', cert, reason: `${name} expires on ${cert.validToDate.toISOString()}, within the ${days}-day renewal window` };
  }
  return { state: 'valid', cert };
}

/**
 * The SANs of a certificate, from Node's rendering ("DNS:a, IP Address:1.2.3.4").
 * Entries of other types (URI, email) cannot match a wanted name, which is the
 * intent: such a certificate was not made for this Service and gets reissued.
 */
function certificateNames(cert: X509Certificate): SubjectAltName[] {
  if (!cert.subjectAltName) return [];
  return cert.subjectAltName.split(', ').map((entry): SubjectAltName => {
    if (entry.startsWith('DNS:')) return { type: 'dns', name: entry.slice(4).toLowerCase() };
    if (entry.startsWith('IP Address:')) {
      try {
        return parseHost(entry.slice(11));
      } catch {
        // Fall through to the opaque form below.
      }
    }
    return { type: 'dns', name: `<unsupported ${entry}>` };
  });
}

function show(san: SubjectAltName): string {
  return san.type === 'dns' ? san.name : san.address;
}
