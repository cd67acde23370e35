// What an image runs, read from its Dockerfile so a bench measures the program
// as shipped: the proxy's (bench/sidecar.ts, bench/proxy-flags.ts) and the
// webhook's (bench/webhook.ts).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node flags (ENTRYPOINT) and environment (ENV of the final stage) the proxy image runs with. */
export const proxyImageRuntime = (): Promise<ImageRuntime> => imageRuntime('proxy');

/** The same for the webhook image. */
export const webhookImageRuntime = (): Promise<ImageRuntime> => imageRuntime('webhook');

export interface ImageRuntime {
  nodeFlags: string[];
  env: Record<string, string>;
}

async function imageRuntime(image: 'proxy' | 'webhook'): Promise<ImageRuntime> {
  const file = fileURLToPath(new URL(`../images/${image}.Dockerfile`, import.meta.url));
  const dockerfile = await readFile(file, 'utf8');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  const argv = entrypoint ? (JSON.parse(entrypoint) as string[]) : [];
  const node = argv.indexOf('/usr/local/bin/node');
  const script = argv.indexOf('/app/dist/faultline.js');
  if (node < 0 || script < node) throw new Error(`${path.relative(process.cwd(), file)}: no ENTRYPOINT running node on /app/dist/faultline.js (${entrypoint})`);
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env = Object.fromEntries([...finalStage.matchAll(/^ENV (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { nodeFlags: argv.slice(node + 1, script), env };
}

/**
 * The environment the proxy container has in a pod: the image's ENV, what the
 * webhook injects (`injected`: POD_NAME, POD_NAMESPACE, ...) and PATH, and
 * nothing of this shell's. This machine's NODE_EXTRA_CA_CERTS and
 * SSL_CERT_FILE (an intercepting proxy's CA) make Node load its whole root
 * store eagerly: 1 MB of idle RSS no pod pays (2026-11-26).
 */
export function podEnv(imageEnv: Record<string, string>, injected: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, ...imageEnv, ...injected };
}
