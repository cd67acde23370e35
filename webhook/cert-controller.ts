// Self-managed serving certificates (`faultline webhook --cert-secret NS/NAME`):
// every replica runs this loop against the same Secret. There is no leader:
// the Secret is the single source of truth, writes to it are conditional
// (certs/secret-store.ts), and everything else a replica does — the caBundle
// it publishes, the files it serves — is derived from the Secret, so replicas
// that see the same Secret do the same thing and replicas that lag converge
// at their next pass.
//
// One pass:
//   1. read the Secret;
//   2. publish its trust bundle (ca-bundle.crt, expired CAs dropped) as the
//      caBundle of Faultline's webhook configurations — a no-op unless someone
//      stripped or changed it;
//   3. planSecret (certs/secret-plan.ts) and, if something is due, write the Secret
//      and start over from 1 with what is now stored (ours or a winner's);
//   4. write tls.key, then tls.crt (the TLS hot reload's commit point) into the
//      cert dir when they differ from what this replica serves.
// A CA rotation therefore spans passes: the new CA is staged in the Secret,
// published, and only after `propagationDelayMs` of being published does any
// replica issue (and then serve) a certificate signed by it. The old CA stays
// in the bundle until it expires.
import { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../common/log.ts';
import { certificateBlocks } from '../certs/bundle.ts';
import { certPaths } from '../certs/ensure.ts';
import { CERT_MODE, KEY_MODE } from '../certs/file-modes.ts';
import { writeFileAtomic } from '../common/files.ts';
import { servingNames, type SubjectAltName } from '../certs/names.ts';
import { patchCaBundle } from '../certs/patch.ts';
import { renderMaterial } from '../certs/secret-material.ts';
import { planSecret, parseRotateRequest, ROTATE_ANNOTATION, trustBundle, type Plan } from '../certs/secret-plan.ts';
import { SecretStore, type SecretRef, type StoredSecret } from '../certs/secret-store.ts';

export interface CertControllerOptions {
  kubeConfig: KubeConfig;
  secret: SecretRef;
  /** Where tls.crt, tls.key and ca.crt (the trust bundle) are written for the HTTPS server. */
  certDir: string;
  /** The Service the API servers dial; its namespace is the Secret's. */
  service: string;
  /** Extra SANs (e.g. 127.0.0.1 for a URL-based webhook). Must be the same on every replica. */
  hosts: readonly string[];
  renewBeforeMs: number;
  /** Period of the re-read of the Secret and re-assertion of the caBundle. */
  refreshIntervalMs: number;
  /** How long a new CA is published before a certificate signed by it is served. */
  propagationDelayMs: number;
  log: Logger;
}

export interface CertController {
  /** Stops the periodic pass and waits for one in flight. */
  stop(): Promise<void>;
}

/** A pass that keeps losing write races gives up until the next tick rather than spin. */
const MAX_WRITES_PER_PASS = 5;
/** Retry sooner than the refresh interval after a failed pass (API server briefly unreachable). */
const ERROR_RETRY_MS = 5_000;

/**
 * Runs the first pass (so the cert dir holds a served pair when this
 * resolves; an error there rejects, and the webhook should not start) and then
 * one pass every refresh interval.
 */
export async function startCertController(opts: CertControllerOptions): Promise<CertController> {
  const names = servingNames(opts.service, opts.secret.namespace, opts.hosts);
  const controller = new Controller(opts, names);
  await mkdir(opts.certDir, { recursive: true, mode: 0o700 });
  const next = await controller.pass();
  controller.schedule(next);
  return controller;
}

class Controller implements CertController {
  #opts: CertControllerOptions;
  #names: readonly SubjectAltName[];
  #store: SecretStore;
  #log: Logger;
  /** patchCaBundle logs every outcome, unchanged ones included; we log the ones that matter ourselves, once. */
  #quietLog: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;
  /** The CA (fingerprint) last seen published, and since when, on this replica's clock. */
  #published: { ca: string; since: number } | undefined;
  /** What this replica last wrote to the cert dir. */
  #served: { cert: string; key: string; bundle: string } | undefined;

  constructor(opts: CertControllerOptions, names: readonly SubjectAltName[]) {
    this.#opts = opts;
    this.#names = names;
    this.#store = new SecretStore(opts.kubeConfig, opts.secret);
    this.#log = opts.log.child({ secret: `${opts.secret.namespace}/${opts.secret.name}` });
    this.#quietLog = this.#log.child({}, { level: 'silent' });
  }

  schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const run = this.pass().then(
        (next) => next,
        (err: unknown) => {
          this.#log.error({ err: (err as Error).message }, `certificate pass failed; retrying in ${ERROR_RETRY_MS / 1000} s`);
          return Math.min(ERROR_RETRY_MS, this.#opts.refreshIntervalMs);
        },
      );
      this.#running = run.then((next) => this.schedule(next));
    }, delayMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** One pass; resolves with the delay until the next. */
  async pass(): Promise<number> {
    let next = this.#opts.refreshIntervalMs;
    for (let writes = 0; ; ) {
      const now = new Date();
      const secret = await this.#store.read();
      this.#checkAnnotation(secret);
      let plan = this.#decide(secret, now);
      if (plan.action !== 'create') {
        // The CA is usable: publish its bundle, then decide again, since the
        // publish may just have started (or, after a strip, restarted) the
        // propagation delay of a staged CA.
        await this.#publish(secret!, now);
        plan = this.#decide(secret, now);
      }
      if (plan.action === 'keep' || plan.action === 'wait') {
        if (plan.action === 'wait') next = Math.min(next, Math.max(plan.retryInMs, 100));
        await this.#serve(secret!, now);
        return next;
      }
      if (writes++ >= MAX_WRITES_PER_PASS) {
        this.#log.warn(`lost ${MAX_WRITES_PER_PASS} write races in a row; trying again at the next pass`);
        return next;
      }
      await this.#write(secret, plan, now);
    }
  }

  #checkAnnotation(secret: StoredSecret | undefined): void {
    const rotate = secret?.annotations[ROTATE_ANNOTATION];
    if (rotate !== undefined && parseRotateRequest(rotate) === undefined) {
      this.#log.warn({ value: rotate }, `ignoring ${ROTATE_ANNOTATION}="${rotate}": use "ca" or "leaf"`);
    }
  }

  #decide(secret: StoredSecret | undefined, now: Date): Plan {
    const caPem = secret?.material.caCert;
    const published = caPem !== undefined && this.#published?.ca === fingerprint(caPem) ? now.getTime() - this.#published.since : undefined;
    return planSecret({
      material: secret?.material,
      rotate: secret?.annotations[ROTATE_ANNOTATION],
      names: this.#names,
      now,
      renewBeforeMs: this.#opts.renewBeforeMs,
      caPublishedForMs: published,
      propagationDelayMs: this.#opts.propagationDelayMs,
    });
  }

  async #write(current: StoredSecret | undefined, plan: Extract<Plan, { action: 'create' | 'rotate-ca' | 'issue-leaf' }>, now: Date): Promise<void> {
    const material = await renderMaterial(plan, current?.material, {
      service: this.#opts.service,
      namespace: this.#opts.secret.namespace,
      hosts: this.#opts.hosts,
      now,
    });
    const result = current ? await this.#store.update(current, material) : await this.#store.create(material);
    if (result === 'conflict') {
      // Another replica (or a person) wrote first: judge what they stored.
      this.#log.info({ action: plan.action }, 'the Secret changed under us; re-reading it');
      return;
    }
    this.#log.info({ action: plan.action, reason: plan.reason, ca: subject(material.caCert) }, `certificate Secret ${plan.action === 'create' ? 'created' : 'updated'}: ${plan.action} (${plan.reason})`);
  }

  /** Makes every webhook's caBundle the Secret's trust bundle, and tracks since when the current CA is published. */
  async #publish(secret: StoredSecret, now: Date): Promise<void> {
    const bundle = trustBundle(secret.material, now);
    const outcomes = await patchCaBundle(this.#opts.kubeConfig, bundle, { log: this.#quietLog });
    const missing = outcomes.filter((o) => o.status === 'not-found');
    for (const o of missing) this.#log.error({ kind: o.kind, name: o.name }, `${o.kind} "${o.name}" not found: its caBundle cannot be set`);
    const updated = outcomes.filter((o) => o.status === 'updated');
    for (const o of updated) this.#log.info({ kind: o.kind, name: o.name, cas: certificateBlocks(bundle).length }, `${o.kind} "${o.name}" caBundle set from the Secret`);
    const ca = fingerprint(secret.material.caCert!);
    if (missing.length > 0) this.#published = undefined;
    // Just written (or rewritten after a strip): API servers may not have it yet.
    else if (updated.length > 0 || this.#published?.ca !== ca) this.#published = { ca, since: now.getTime() };
  }

  /** Writes the Secret's serving pair into the cert dir when it is not what this replica already serves. */
  async #serve(secret: StoredSecret, now: Date): Promise<void> {
    const { cert, key } = secret.material;
    // Nothing servable yet (a rotate-ca of a Secret without a leaf): the next decide issues one.
    if (!cert || !key) return;
    const bundle = trustBundle(secret.material, now);
    if (this.#served?.cert === cert && this.#served.key === key && this.#served.bundle === bundle) return;
    const paths = certPaths(this.#opts.certDir);
    await writeFileAtomic(paths.caCert, bundle, CERT_MODE);
    // Key first, certificate last: see certs/ensure.ts for the reload contract.
    await writeFileAtomic(paths.key, key, KEY_MODE);
    await writeFileAtomic(paths.cert, cert, CERT_MODE);
    this.#served = { cert, key, bundle };
    this.#log.info({ dir: paths.dir, issuer: issuer(cert), notAfter: notAfter(cert) }, 'serving certificate written from the Secret');
  }
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function subject(pem: string): string {
  return new X509Certificate(pem).subject.replace(/\n/g, ', ');
}

function issuer(pem: string): string {
  return new X509Certificate(pem).issuer.replace(/\n/g, ', ');
}

function notAfter(pem: string): string {
  return new X509Certificate(pem).validToDate.toISOString();
}
