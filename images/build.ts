// `npm run build` (and each image's build stage): the product CLI as plain JavaScript for the images, so pods
// run no TypeScript (Node's type stripping loads a WebAssembly transformer that
// costs the proxy ~17 MB of idle RSS). One ESM bundle, dist/faultline.js, with
// each command's code split into its own chunk by the CLI's lazy imports: the
// proxy loads the proxy's chunks only. The packages the proxy loads on every
// start are inlined (INLINED); every other package stays in node_modules (the
// images install production dependencies), so native ones (fuse-native,
// koffi) load as they always do. pino's transports are left out
// (pinoWithoutTransports).
//
// `node images/build.ts demo` (the demo image's build stage): the walkthrough's
// app, demo/main.ts, as one self-contained file, dist/demo/main.js (it imports
// nothing but Node's own modules). Reads demo/ alone, so that image's build
// context needs no product sources.
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist`;
const target = process.argv[2] ?? 'faultline';

/**
 * Inlined into the bundle, with what they import: pure JavaScript that the
 * proxy loads at every start. From node_modules they were ~140 CommonJS files
 * (@opentelemetry/api's 44 through prom-client among them), and loading them
 * one by one ran Node's module loader hot enough to tier up, which paged in
 * the optimizing compilers' code and left each file's wrapper and resolution
 * state on the heap. Idle RSS with a plan file (bench:sidecar-ab, the same
 * sources, medians of 3 rounds): 75.4 MB from node_modules, 68.0 inlined.
 * yaml is here for the kubeconfig (outside a pod), which it then parses from
 * one chunk instead of 72 files.
 */
const INLINED = new Set(['pino', 'prom-client', 'toxiproxy-node-client', 'yaml']);

/**
 * A real require() in each chunk, which an ESM bundle lacks (esbuild's
 * stand-in throws): inlined CommonJS code and builtinsViaRequire call it.
 */
const REQUIRE_BANNER = "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);";

/**
 * Node's own modules through require(), never an ESM import. Node builds a
 * built-in's ESM namespace by reading every export, and that runs the lazy
 * getters CommonJS callers never touch: node:http's WebSocket, CloseEvent
 * and MessageEvent load Node's whole bundled undici. `import http from
 * 'node:http'` alone held 58.3 MB of RSS against 45.9 MB for require (an
 * idle server, Node 24, 3 runs each); node:fs and node:util cost 2 MB more
 * each the same way. The proxy's own code pages in much of what that undici
 * load does, so there it saved less: idle RSS with a plan file 66.3 MB, against
 * 68.0 with only INLINED (bench:sidecar-ab as above, two runs). Each import of
 * `node:x` becomes a one-line CommonJS module, `module.exports =
 * require('node:x')`, and esbuild's interop reads the names the code imports
 * from it when it uses them.
 */
const builtinsViaRequire: Plugin = {
  name: 'builtins-via-require',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'require-call' ? { path: args.path, external: true } : { path: args.path, namespace: 'builtin-via-require' });
    b.onLoad({ filter: /.*/, namespace: 'builtin-via-require' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * pino's transports run in a worker thread that loads pino's files by
 * __dirname, which an ESM bundle does not have, and Faultline logs JSON lines
 * to stdout (common/log.ts) with none. Inlined as they are, their module would
 * load thread-stream from node_modules at every start, whichever copy sits at
 * the top level, and fail only once a transport was configured. It becomes one
 * that says so when called.
 */
let pinoTransportsLeftOut = false;
const pinoWithoutTransports: Plugin = {
  name: 'pino-without-transports',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]pino[\\/]lib[\\/]transport\.js$/ }, () => {
      pinoTransportsLeftOut = true;
      return {
        contents: "module.exports = function transport() { throw new Error('pino transports are not in this bundle: Faultline logs JSON lines to stdout (common/log.ts)'); };",
        loader: 'js',
      };
    });
  },
};

/** Every dependency not inlined, so it loads from node_modules. */
export async function externalPackages(): Promise<string[]> {
  const manifest = JSON.parse(await readFile(`${root}package.json`, 'utf8')) as { dependencies: Record<string, string> };
  const unknown = [...INLINED].filter((name) => !(name in manifest.dependencies));
  if (unknown.length > 0) throw new Error(`INLINED names packages that are not dependencies: ${unknown.join(', ')}`);
  return Object.keys(manifest.dependencies).filter((name) => !INLINED.has(name));
}

/** Settings both bundles share: ESM for this Node, Node's modules through require(), pino without transports, no comments kept. */
const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  banner: { js: REQUIRE_BANNER },
  plugins: [builtinsViaRequire, pinoWithoutTransports],
} satisfies BuildOptions;

/** Bundles, then says what it wrote (files, KiB). */
async function bundle(what: string, options: BuildOptions): Promise<void> {
  const result = await build({ ...common, ...options });
  const outputs = Object.values(result.metafile?.outputs ?? {});
  const bytes = outputs.reduce((n, o) => n + o.bytes, 0);
  console.log(`${what}: ${outputs.length} files, ${Math.round(bytes / 1024)} KiB`);
}

async function main(): Promise<void> {
  if (target === 'faultline') {
    // Loaded here, not at the top: the demo's build stage has no product sources.
    const { renderFailOpenWatcher } = await import('../pod-setup/redirect/capture-rules.ts');
    const { FAIL_OPEN_SCRIPT_PATH } = await import('../contract/pod-layout.ts');
    await rm(outdir, { recursive: true, force: true });
    await bundle('dist/', {
      entryPoints: { faultline: 'cli/main.ts' },
      outdir,
      splitting: true,
      external: await externalPackages(),
      // Chunks beside the entry: common/version.ts finds package.json one level up.
      chunkNames: '[name]-[hash]',
    });
    // A pino that moved its transports elsewhere would bring them back inlined, and broken.
    if (!pinoTransportsLeftOut) throw new Error('images/build.ts: pino/lib/transport.js was not bundled, so pinoWithoutTransports left nothing out: check where this pino keeps its transports');
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
}

// Run, not imported: the bundle test reads externalPackages() from here.
if (import.meta.main) await main();
