// Which installed packages some packages may load: themselves and everything
// they depend on (optional and peer dependencies too, where installed), as
// package-lock.json records the tree and Node resolves it, by top-level name
// under node_modules (as netns-proxy-probe.ts reports what a process loaded).
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  /** An optional peer may be listed here alone (debug's supports-color). */
  peerDependenciesMeta?: Record<string, unknown>;
}

/** The package a file under node_modules belongs to, by its top-level name there (`@scope/name` or `name`). */
export function topLevelPackage(file: string): string | undefined {
  return /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
}

export function packageClosure(roots: Iterable<string>, repoRoot: string): Set<string> {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  /** The lock path `name` resolves to from the package at `from` ('' for the project): the nearest node_modules up the tree. */
  const resolve = (from: string, name: string): string | undefined => {
    for (let dir = from; ; ) {
      const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (lock.packages[candidate]) return candidate;
      if (dir === '') return undefined;
      const up = dir.lastIndexOf('/node_modules/');
      dir = up < 0 ? '' : dir.slice(0, up);
    }
  };
  const seen = new Set<string>();
  const visit = (from: string, name: string): void => {
    const at = resolve(from, name);
    if (at === undefined || seen.has(at)) return;
    seen.add(at);
    const entry = lock.packages[at]!;
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies, ...entry.peerDependenciesMeta })) visit(at, dep);
  };
  for (const name of roots) visit('', name);
  return new Set([...seen].map((at) => topLevelPackage(at)!));
}
