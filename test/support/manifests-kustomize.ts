// Helpers for the manifests-* tests: render a kustomization with kubectl and
// parse the stream into objects. Not a test file itself (no .test.ts suffix).
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { binDir } from '../../controlplane/binaries.ts';

const run = promisify(execFile);

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The kustomizations users apply, relative to the repository root. */
export const KUSTOMIZATIONS = ['manifests', 'manifests/overlays/dev', 'manifests/overlays/cert-manager'] as const;
export type KustomizationPath = (typeof KUSTOMIZATIONS)[number];

/** A rendered Kubernetes object, loosely typed: tests navigate it with `field()`. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

let kubectlPath: Promise<string> | undefined;

/**
 * The kubectl to render with: the one built from source for the pinned
 * Kubernetes version if it exists (its embedded kustomize matches the cluster
 * version we target), else whatever kubectl is on PATH.
 */
export function kubectl(): Promise<string> {
  kubectlPath ??= (async () => {
    const built = path.join(await binDir(), 'kubectl');
    return access(built, constants.X_OK).then(
      () => built,
      () => 'kubectl',
    );
  })();
  return kubectlPath;
}

const renders = new Map<string, Promise<K8sObject[]>>();

/** `kubectl kustomize <dir>` parsed into objects; cached per directory. */
export function render(dir: KustomizationPath): Promise<K8sObject[]> {
  let result = renders.get(dir);
  if (!result) {
    result = (async () => {
      const bin = await kubectl();
      const { stdout } = await run(bin, ['kustomize', path.join(repoRoot, dir)], { maxBuffer: 64 * 1024 * 1024 }).catch(
        (err: Error & { stderr?: string }) => {
          throw new Error(`${bin} kustomize ${dir} failed: ${err.stderr ?? err.message}`);
        },
      );
      return parseAllDocuments(stdout).map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${dir}: invalid YAML: ${doc.errors[0]!.message}`);
        return doc.toJS() as K8sObject;
      });
    })();
    renders.set(dir, result);
  }
  return result;
}

/** The one object of this kind and name; fails the test if absent or duplicated. */
export function find(objects: readonly K8sObject[], kind: string, name: string, namespace?: string): K8sObject {
  const hits = objects.filter(
    (o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (hits.length !== 1) throw new Error(`expected exactly one ${kind} ${namespace ? `${namespace}/` : ''}${name}, found ${hits.length}`);
  return hits[0]!;
}

/** Walks a dotted path through nested objects/arrays (numeric segments index arrays). */
export function field(value: unknown, dotted: string): unknown {
  let current: unknown = value;
  for (const key of dotted.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Every container of a pod template, init containers included. */
export function podContainers(workload: K8sObject): Array<Record<string, unknown>> {
  const spec = field(workload, 'spec.template.spec') as Record<string, unknown> | undefined;
  return [...((spec?.initContainers as Array<Record<string, unknown>>) ?? []), ...((spec?.containers as Array<Record<string, unknown>>) ?? [])];
}
