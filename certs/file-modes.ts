// File modes for key material; the writes themselves go through common/files.ts.

/** Private keys: owner read/write only. */
export const KEY_MODE = 0o600;
/** Certificates are public. */
export const CERT_MODE = 0o644;
