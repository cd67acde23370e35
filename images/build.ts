// `npm run build` (and each image's build stage): the product CLI as plain JavaScript for the images, so pods
// run no TypeScript (Node's type stripping loads a WebAssembly transformer that
// costs the proxy ~17 MB of idle RSS). One ESM bundle, dist/faultline.js, with
// each command's code split into its own chunk by the CLI's lazy imports: the
// proxy loads the proxy's chunks only. Packages stay in node_modules (the
// images install production dependencies), so native and worker-based ones
// (fuse-native, koffi, pino's transports) load as they always do.
import { build } from 'esbuild';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderFailOpenWatcher } from '../pod-setup/redirect/capture-rules.ts';
import { FAIL_OPEN_SCRIPT_PATH } from '../contract/pod-layout.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist`;

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { faultline: 'cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  packages: 'external',
  // Chunks beside the entry: common/version.ts finds package.json one level up.
  chunkNames: '[name]-[hash]',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`dist/: ${Object.keys(result.metafile.outputs).length} files, ${Math.round(bytes / 1024)} KiB`);
// faultline-failopen runs this with the image's bash (no Node): rendered from
// the same module as the gate's rules, so the two cannot disagree.
const watcher = `${outdir}/${FAIL_OPEN_SCRIPT_PATH.split('/').pop()}`;
await writeFile(watcher, renderFailOpenWatcher(), { mode: 0o755 });
console.log(`${watcher.slice(root.length)}: fail-open watcher`);
