// Certificate generation with node-forge: a self-signed CA and a serving
// certificate for the webhook Service, signed by it.
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { servingNames, type SubjectAltName } from './names.ts';

/** A PEM certificate and its PEM private key (PKCS#8). */
export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

/**
 * Validity defaults. The CA lives long so rotating the serving certificate
 * never touches the webhook configurations' caBundle; the leaf lives one year
 * so a forgotten renewal job fails loudly but not soon.
 */
export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_LEAF_DAYS = 365;
/**
 * notBefore is set this far in the past: a node or API server whose clock is a
 * little behind ours would otherwise reject a certificate issued "in the future".
 */
export const BACKDATE_MS = 5 * 60 * 1000;
export const RSA_BITS = 2048;

const DAY_MS = 24 * 60 * 60 * 1000;
const generateKeyPairAsync = promisify(generateKeyPair);

export interface GenerateCaOptions {
  /** Validity in days from `now` (default 3650). */
  days?: number;
  /** Clock used for validity (tests). */
  now?: Date;
}

export interface ServingCertOptions {
  service: string;
  namespace: string;
  /** Extra DNS names or IP literals (IPv4/IPv6), e.g. 127.0.0.1 for a local webhook. */
  hosts?: readonly string[];
  /** Validity in days from `now` (default 365), capped at the CA's expiry. */
  days?: number;
  now?: Date;
}

/** A self-signed CA that can only sign end-entity certificates (pathLen 0). */
export async function generateCa(options: GenerateCaOptions = {}): Promise<KeyPairPem> {
  const days = validateDays(options.days ?? DEFAULT_CA_DAYS, 'CA validity');
  const now = options.now ?? new Date();
  const { keyPem, privateKey, publicKey } = await newRsaKey();

  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  // A unique subject per CA (the convention of kube-apiserver's self-signed
  // certs, "name@unixtime") keeps the old and new CA distinguishable by name
  // while both sit in a caBundle during rotation. UTF8String, as Go writes
  // it: forge defaults to PrintableString, which cannot hold '@', and Go's
  // x509 parser (kube-apiserver) rejects the whole certificate.
  const subject = [
    { name: 'commonName', value: `faultline-webhook-ca@${Math.floor(now.getTime() / 1000)}`, valueTagClass: forge.asn1.Type.UTF8 as number },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    // Without a value forge derives it from the public key (RFC 5280 method 1).
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return { certPem: toPem(cert), keyPem };
}

/**
 * A serving certificate for `service.namespace.svc` (and the other Service
 * names, plus `hosts`), signed by `ca`. CN is `NAME.NS.svc` for readability in
 * `openssl x509` output only: verifiers use the SANs.
 */
export async function issueServingCert(ca: KeyPairPem, options: ServingCertOptions): Promise<KeyPairPem> {
  const names = servingNames(options.service, options.namespace, options.hosts);
  const days = validateDays(options.days ?? DEFAULT_LEAF_DAYS, 'certificate validity');
  const now = options.now ?? new Date();
  const caCert = parseForge(() => forge.pki.certificateFromPem(ca.certPem), 'CA certificate');
  const caKey = parseForge(() => forge.pki.privateKeyFromPem(ca.keyPem), 'CA private key');

  const notAfter = new Date(now.getTime() + days * DAY_MS);
  // A certificate outliving its issuer is useless; cap instead of failing so a
  // leaf issued late in the CA's life still gets the longest validity it can.
  if (notAfter > caCert.validity.notAfter) notAfter.setTime(caCert.validity.notAfter.getTime());
  if (notAfter <= now) throw new Error('the CA certificate has expired; generate a new CA first');

  const { keyPem, privateKey, publicKey } = await newRsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: commonName(options.service, options.namespace) }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map(toForgeAltName) },
    { name: 'subjectKeyIdentifier' },
    // forge's `keyIdentifier: true` would hash the *leaf's* key; the AKI must
    // name the issuer's key, so pass the CA's identifier explicitly.
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyIdentifier(caCert) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: toPem(cert), keyPem };
}

/** forge writes CRLF line ends; every other PEM tool (and ours, node:crypto) uses LF. */
function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

/** CN is capped at 64 characters (RFC 5280 ub-common-name); long names fall back to the Service name. */
function commonName(service: string, namespace: string): string {
  const full = `${service}.${namespace}.svc`;
  return full.length <= 64 ? full : service;
}

/**
 * RSA key generation in node-forge is pure JavaScript and takes seconds for
 * 2048 bits (blocking the event loop unless run in its web-worker mode);
 * OpenSSL through node:crypto does it natively in a libuv worker in tens of
 * milliseconds. Forge only needs the key to sign, so convert it from PEM.
 */
async function newRsaKey(): Promise<{ keyPem: string; privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey }> {
  const { privateKey: keyPem } = await generateKeyPairAsync('rsa', {
    modulusLength: RSA_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const privateKey = forge.pki.privateKeyFromPem(keyPem);
  return { keyPem, privateKey, publicKey: forge.pki.setRsaPublicKey(privateKey.n, privateKey.e) };
}

/**
 * A random positive serial of 16 bytes. The top two bits are fixed to 01: the
 * first clear keeps the DER INTEGER positive, the second set keeps it minimally
 * encoded (OpenSSL rejects a padded INTEGER), leaving 126 random bits — well
 * above the 64 bits of entropy CAs are held to.
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x40 | (bytes[0]! & 0x3f);
  return bytes.toString('hex');
}

function toForgeAltName(san: SubjectAltName): { type: number; value: string } {
  // GeneralName tags: 2 = dNSName, 7 = iPAddress (raw network-order bytes;
  // forge's own IPv6 text parser mishandles some compressed forms).
  return san.type === 'dns' ? { type: 2, value: san.name } : { type: 7, value: san.bytes.toString('binary') };
}

/** The CA's own SKI as written in its certificate (a CA generated elsewhere may use another method), else derived. */
function subjectKeyIdentifier(caCert: forge.pki.Certificate): string {
  const ext = caCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier
    ? forge.util.hexToBytes(ext.subjectKeyIdentifier)
    : caCert.generateSubjectKeyIdentifier().getBytes();
}

export function validateDays(days: number, what: string): number {
  if (!Number.isInteger(days) || days < 1) throw new Error(`${what} must be a whole number of days ≥ 1, got ${days}`);
  return days;
}

function parseForge<T>(parse: () => T, what: string): T {
  try {
    return parse();
  } catch (err) {
    throw new Error(`cannot read the ${what}: ${(err as Error).message}`);
  }
}
