// `npm run build` (and each image's build stage): the product CLI as plain JavaScript for the images, so pods
// run no TypeScript (Node's type stripping loads a WebAssembly transformer that
// costs the proxy ~17 MB of idle RSS). One ESM bundle, dist/faultline.js, with
// each command's code split into its own chunk by the CLI's lazy imports: the
// proxy loads the proxy's chunks only. Packages stay in node_modules (the
// images install production dependencies), so native and worker-based ones
// (fuse-native, koffi, pino's transports) load as they always do.
//
// `node images/build.ts demo` (the demo image's build stage): the walkthrough's
// app, demo/main.ts, as one self-contained file, dist/demo/main.js (it imports
// nothing but Node's own modules). Reads demo/ alone, so that image's build
// context needs no product sources.
import { build, type BuildOptions } from 'esbuild';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist`;
const target = process.argv[2] ?? 'faultline';

/** Settings both bundles share: ESM for this Node, no comments kept. */
const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
} satisfies BuildOptions;

/** Bundles, then says what it wrote (files, KiB). */
async function bundle(what: string, options: BuildOptions): Promise<void> {
  const result = await build({ ...common, ...options });
  const outputs = Object.values(result.metafile?.outputs ?? {});
  const bytes = outputs.reduce((n, o) => n + o.bytes, 0);
  console.log(`${what}: ${outputs.length} files, ${Math.round(bytes / 1024)} KiB`);
}

if (target === 'faultline') {
  // Loaded here, not at the top: the demo's build stage has no product sources.
  const { renderFailOpenWatcher } = await import('../pod-setup/redirect/capture-rules.ts');
  const { FAIL_OPEN_SCRIPT_PATH } = await import('../contract/pod-layout.ts');
  await rm(outdir, { recursive: true, force: true });
  await bundle('dist/', {
    entryPoints: { faultline: 'cli/main.ts' },
    outdir,
    splitting: true,
    packages: 'external',
    // Chunks beside the entry: common/version.ts finds package.json one level up.
    chunkNames: '[name]-[hash]',
  });
  // faultline-failopen runs this with the image's bash (no Node): rendered from
  // the same module as the gate's rules, so the two cannot disagree.
  const watcher = `${outdir}/${FAIL_OPEN_SCRIPT_PATH.split('/').pop()}`;
  await writeFile(watcher, renderFailOpenWatcher(), { mode: 0o755 });
  console.log(`${watcher.slice(root.length)}: fail-open watcher`);
} else if (target === 'demo') {
  const demoOut = `${outdir}/demo`;
  await rm(demoOut, { recursive: true, force: true });
  // Everything inlined: the image holds this file, demo/package.json ("type": "module") and node, no node_modules.
  await bundle('dist/demo/', { entryPoints: { main: 'demo/main.ts' }, outdir: demoOut });
} else {
  console.error(`usage: node images/build.ts [faultline|demo]  (got ${JSON.stringify(target)})`);
  process.exit(2);
}
