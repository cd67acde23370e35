// certs/: the admission webhook's TLS material. See ensure.ts for the on-disk
// contract (file names, write order) that the webhook server reloads from.
export { mergeCaBundle, parseCaBundle } from './bundle.ts';
export {
  certPaths,
  DEFAULT_RENEW_WITHIN_DAYS,
  ensureCertificates,
  FILE_NAMES,
  type Action,
  type CertPaths,
  type EnsureOptions,
  type EnsureResult,
} from './ensure.ts';
export { servingNames, type SubjectAltName } from './names.ts';
export { patchCaBundle, type ConfigurationKind, type PatchCaBundleOptions, type PatchOutcome } from './patch.ts';
export {
  DEFAULT_CA_DAYS,
  DEFAULT_LEAF_DAYS,
  generateCa,
  issueServingCert,
  type GenerateCaOptions,
  type KeyPairPem,
  type ServingCertOptions,
} from './x509.ts';
