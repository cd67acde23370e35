// Preloaded into a test's faultline-proxy (node --expose-gc --import this):
// on SIGUSR2 it collects garbage and logs the heap, the pending timers and
// what the proxy has loaded as one JSON line, so a test can see what the proxy
// holds after a load, from outside its process. The proxy itself never
// handles SIGUSR2.
import { createRequire } from 'node:module';
import { topLevelPackage } from './package-closure.ts';

const { gc } = globalThis as { gc?: () => void };
/** Node's own module list (not in its types): `NativeModule <id>` for each built-in loaded. */
const { moduleLoadList } = process as unknown as { moduleLoadList: string[] };

/** The packages CommonJS files were loaded from, by their top-level name under node_modules. */
function packagesLoaded(): string[] {
  const names = new Set<string>();
  for (const file of Object.keys(createRequire(import.meta.url).cache)) {
    const name = topLevelPackage(file);
    if (name !== undefined) names.add(name);
  }
  return [...names].sort();
}

process.on('SIGUSR2', () => {
  gc?.();
  gc?.();
  const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const builtins = moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length));
  process.stdout.write(`${JSON.stringify({ msg: 'test probe', gc: gc !== undefined, heapUsed: process.memoryUsage().heapUsed, timers, packages: packagesLoaded(), builtins })}\n`);
});
