// PEM bundles: splitting, and merging CAs for rotation.
import { X509Certificate } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/** Every `CERTIFICATE` PEM block in `pem`, in order (other block types are ignored). */
export function certificateBlocks(pem: string): string[] {
  return [...pem.matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE').map((m) => m[0]);
}

/**
 * Parses a PEM bundle that must hold at least one certificate, all CAs.
 * `what` names the input in errors.
 */
export function parseCaBundle(pem: string, what: string): X509Certificate[] {
  const blocks = certificateBlocks(pem);
  if (blocks.length === 0) throw new Error(`${what} holds no PEM certificate`);
  return blocks.map((block, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw new Error(`${what}: certificate #${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
    if (!cert.ca) throw new Error(`${what}: certificate #${i + 1} (${cert.subject}) is not a CA certificate`);
    return cert;
  });
}

/**
 * The CA bundle to trust while rotating from the CA(s) in `existingPem` to
 * `newCaPem`: the new CA(s) first, then every existing certificate that has not
 * expired at `now`, each once. Replicas still serving a leaf from the old CA
 * keep being trusted until they pick up the new leaf; expired CAs trust nothing
 * and are dropped, so the bundle cannot grow without bound.
 *
 * `existingPem` is whatever is deployed (it may be empty, or hold garbage left
 * by hand edits): unparseable blocks are dropped rather than failing the
 * rotation. `newCaPem` is ours and must be valid, or this throws.
 */
export function mergeCaBundle(existingPem: string | undefined, newCaPem: string, now: Date = new Date()): string {
  const fresh = parseCaBundle(newCaPem, 'the new CA');
  const retained = certificateBlocks(existingPem ?? '').flatMap((block) => {
    try {
      return [new X509Certificate(block)];
    } catch {
      return [];
    }
  });
  const seen = new Set<string>();
  const out: string[] = [];
  for (const cert of [...fresh, ...retained.filter((c) => c.validToDate > now)]) {
    if (seen.has(cert.fingerprint256)) continue;
    seen.add(cert.fingerprint256);
    // toString() re-encodes canonically, so the same set of CAs always yields
    // byte-identical bundles (callers compare them to skip no-op updates).
    out.push(cert.toString().trim());
  }
  return out.join('\n') + '\n';
}
