// Serving certificate material from a directory (tls.crt + tls.key), and
// hot reload when it changes. Kubernetes updates a Secret volume by writing a
// new timestamped directory and swapping the `..data` symlink, so the files'
// paths never change: fs.watch catches most swaps quickly, a periodic re-read
// catches the rest (fs.watch is best-effort, and misses symlink swaps on some
// filesystems).
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Logger } from '../common/log.ts';

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/** Reads and checks DIR/tls.crt and DIR/tls.key; throws a message naming what is wrong. */
export async function loadKeyPair(dir: string): Promise<KeyPair> {
  const pair = await readKeyPair(dir);
  checkKeyPair(pair.cert, pair.key, dir);
  return pair;
}

async function readKeyPair(dir: string): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(join(dir, 'tls.crt')), readFile(join(dir, 'tls.key'))]);
  return { cert, key };
}

function checkKeyPair(cert: Buffer, key: Buffer, dir: string): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${dir}/tls.crt is not a PEM certificate: ${(err as Error).message}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`${dir}/tls.key is not a PEM private key: ${(err as Error).message}`);
  }
  // A half-rotated directory (new cert, old key) must never reach the TLS stack.
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`${dir}/tls.key does not match the certificate in ${dir}/tls.crt`);
  if (Date.parse(x509.validTo) < Date.now()) throw new Error(`${dir}/tls.crt expired at ${x509.validTo}`);
}

export interface CertWatcherOptions {
  dir: string;
  /** The pair currently served. */
  current: KeyPair;
  /** Called with a new, checked pair. */
  onChange: (pair: KeyPair) => void;
  log: Logger;
  pollIntervalMs?: number;
}

/**
 * Watches a certificate directory and hands every new valid pair to onChange.
 * An invalid pair is logged once and ignored; the old one keeps being served.
 * Returns a function that stops watching.
 */
export function watchKeyPair(opts: CertWatcherOptions): () => void {
  const { dir, log } = opts;
  let served = opts.current;
  let rejected: KeyPair | undefined;
  let running = false;
  let again = false;
  let debounce: NodeJS.Timeout | undefined;

  const same = (a: KeyPair | undefined, b: KeyPair): boolean => a !== undefined && a.cert.equals(b.cert) && a.key.equals(b.key);

  async function check(): Promise<void> {
    // One check at a time; a trigger during a check runs one more afterwards.
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      let pair: KeyPair;
      try {
        pair = await readKeyPair(dir);
      } catch (err) {
        log.warn({ dir, err: (err as Error).message }, 'cannot read serving certificate; keeping the current one');
        return;
      }
      if (same(served, pair) || same(rejected, pair)) return;
      try {
        checkKeyPair(pair.cert, pair.key, dir);
      } catch (err) {
        rejected = pair;
        log.warn({ dir }, `ignoring new serving certificate: ${(err as Error).message}`);
        return;
      }
      try {
        opts.onChange(pair);
      } catch (err) {
        rejected = pair;
        log.warn({ dir }, `TLS stack refused the new serving certificate: ${(err as Error).message}`);
        return;
      }
      served = pair;
      rejected = undefined;
      log.info({ dir, fingerprint: new X509Certificate(pair.cert).fingerprint256 }, 'serving certificate reloaded');
    } finally {
      running = false;
      if (again) {
        again = false;
        void check();
      }
    }
  }

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, () => {
      // Files in a rotation land within milliseconds of each other; read once they settle.
      clearTimeout(debounce);
      debounce = setTimeout(() => void check(), 100);
    });
    watcher.on('error', (err) => log.warn({ dir, err: err.message }, 'certificate directory watch failed; polling only'));
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'cannot watch certificate directory; polling only');
  }
  const poll = setInterval(() => void check(), opts.pollIntervalMs ?? 3000);
  poll.unref();

  return () => {
    clearInterval(poll);
    clearTimeout(debounce);
    watcher?.close();
  };
}
