// The tree's boundaries as a test: product code never reaches into dev
// infrastructure (the images ship product folders only), the two pod-side
// programs never import each other, and package.json declares exactly the
// packages product code imports.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** Folders whose code ships in an image. */
const PRODUCT = ['webhook', 'sidecar', 'pod-setup', 'contract', 'kube', 'policies', 'certs', 'common', 'cli'];
/** Folders only development, tests and benchmarks use. */
const DEV = ['controlplane', 'bench', 'hack', 'test'];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

/** Every module specifier of static imports, re-exports and dynamic import() calls. */
export function specifiers(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

interface Edge { from: string; to: string }
function edges(dirs: readonly string[]): Edge[] {
  return dirs.flatMap(sources).flatMap((file) =>
    specifiers(readFileSync(join(ROOT, file), 'utf8')).map((spec) => ({
      from: file,
      to: spec.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), spec)) : spec,
    })),
  );
}
const topFolder = (path: string): string => path.split('/')[0]!;
const packageOf = (spec: string): string => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);

describe('layout: boundaries between folders', () => {
  it('finds static, dynamic and side-effect imports (the scanner itself)', () => {
    const code = "import a from './a.ts';\nimport type { B } from \"../b.ts\";\nconst c = await import('../c/c.ts');\nimport './d.ts';\nexport { e } from './e.ts';";
    assert.deepEqual(specifiers(code).sort(), ['../b.ts', '../c/c.ts', './a.ts', './d.ts', './e.ts']);
  });

  it('product code never imports controlplane/, bench/, hack/ or test/', () => {
    const bad = edges(PRODUCT).filter((e) => DEV.includes(topFolder(e.to)));
    assert.deepEqual(bad, []);
  });

  it('the two pod-side programs never import each other, and the contract neither', () => {
    const crossing = (from: string, to: readonly string[]) => edges([from]).filter((e) => to.includes(topFolder(e.to)));
    assert.deepEqual(crossing('sidecar', ['pod-setup', 'webhook']), []);
    assert.deepEqual(crossing('pod-setup', ['sidecar', 'webhook']), []);
    assert.deepEqual(crossing('contract', ['sidecar', 'pod-setup', 'webhook']), []);
  });

  it('the proxy never loads @kubernetes/client-node, through any of its imports (static or lazy)', () => {
    // The closure of sidecar/ over relative imports: every module the proxy can load.
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of specifiers(readFileSync(join(ROOT, file), 'utf8'))) {
        if (spec.startsWith('.')) visit(relative(ROOT, resolve(ROOT, dirname(file), spec)));
        else packages.add(packageOf(spec));
      }
    };
    sources('sidecar').forEach(visit);
    assert.ok(seen.has('kube/list-watch.ts'), 'the proxy uses the shared Kubernetes layer');
    assert.ok(!packages.has('@kubernetes/client-node'), [...seen].filter((f) => specifiers(readFileSync(join(ROOT, f), 'utf8')).includes('@kubernetes/client-node')).join(', '));
  });

  it('product code imports only declared runtime dependencies, and every one is used', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const imported = new Set(edges(PRODUCT).filter((e) => !e.to.startsWith('node:') && !PRODUCT.includes(topFolder(e.to)) && !DEV.includes(topFolder(e.to))).map((e) => packageOf(e.to)));
    // fuse-native (a native addon) is loaded through createRequire, not an import statement.
    const required = new Set(PRODUCT.flatMap(sources).flatMap((f) => [...readFileSync(join(ROOT, f), 'utf8').matchAll(/(?:\brequire|createRequire\([^)]*\))\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => packageOf(m[1]!))));
    const used = new Set([...imported, ...required]);
    assert.deepEqual([...imported].filter((p) => !(p in pkg.dependencies)).sort(), [], 'imported but not in dependencies');
    assert.deepEqual(Object.keys(pkg.dependencies).filter((p) => !used.has(p)).sort(), [], 'declared but never imported');
  });
});
