// The images `npm run images:build` makes, run with podman: each entrypoint
// starts, toxiproxy reports the pinned version, the demo answers on both
// ports from its own curl, pause stops on SIGTERM, every image runs as its
// intended user, and nothing of the build-time proxy CA (or apt's caches) is
// inside. Skipped, saying why, when podman or the images are missing;
// FAULTLINE_REQUIRE_IMAGES=1 (CI, after images:build) turns that into a failure.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEMO_IMAGE, IMAGES, PAUSE_IMAGE } from '../../common/images.ts';
import { pinnedVersions } from '../../controlplane/binaries.ts';
import { DEFAULT_PROXY_UID } from '../../policies/wellknown.ts';
import { repoRoot } from '../support/manifests-kustomize.ts';

const exec = promisify(execFile);
const env = { ...process.env, CONTAINERS_CONF: path.join(repoRoot, 'hack', 'images', 'containers.conf') };

async function podman(...args: string[]): Promise<string> {
  const { stdout } = await exec('podman', args, { env, maxBuffer: 16 << 20 });
  return stdout;
}

/** The user each image runs as: the Deployment's nonroot, the proxy UID init excludes, root, nobody. */
const USERS: Record<string, string> = {
  [IMAGES.webhook]: '65532:65532',
  [IMAGES.proxy]: `${DEFAULT_PROXY_UID}:${DEFAULT_PROXY_UID}`,
  [IMAGES.init]: '0:0',
  [DEMO_IMAGE]: '65532:65532',
  [PAUSE_IMAGE]: '65535:65535',
};
const ALL = Object.keys(USERS);

/** Base64 lines of PEM certificates in `text`, one distinctive line per certificate. */
function certMarkers(text: string): string[] {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----\r?\n([\s\S]*?)-----END CERTIFICATE-----/g)].map(
    (m) => m[1]!.split(/\r?\n/).filter((l) => l.length === 64)[2] ?? m[1]!.slice(0, 64),
  );
}

/**
 * The CA certificates the build environment adds (SSL_CERT_FILE,
 * NODE_EXTRA_CA_CERTS) beyond Debian's Mozilla set: what an intercepting
 * proxy's CA looks like. Empty when the environment names none.
 */
async function buildCaMarkers(): Promise<string[]> {
  const files = [process.env.SSL_CERT_FILE, process.env.NODE_EXTRA_CA_CERTS].filter((f): f is string => !!f);
  const mozillaDir = '/usr/share/ca-certificates/mozilla';
  const mozilla = new Set<string>();
  for (const f of await readdir(mozillaDir).catch(() => [] as string[]))
    for (const m of certMarkers(await readFile(path.join(mozillaDir, f), 'utf8'))) mozilla.add(m);
  const extra = new Set<string>();
  for (const f of files) for (const m of certMarkers(await readFile(f, 'utf8'))) if (!mozilla.has(m)) extra.add(m);
  return [...extra];
}

/** Runs `fn` on the image's filesystem (podman image mount: rootful podman, as in CI). */
async function withImageRoot<T>(image: string, fn: (root: string) => Promise<T>): Promise<T> {
  const root = (await podman('image', 'mount', image)).trim();
  try {
    return await fn(root);
  } finally {
    await podman('image', 'unmount', image);
  }
}

async function lines(cmd: string, args: string[]): Promise<string[]> {
  const { stdout } = await exec(cmd, args, { maxBuffer: 16 << 20 });
  return stdout.split('\n').filter(Boolean);
}

/** Files under `root` that contain one of `needles` (grep exits 1 when none does). */
async function filesContaining(root: string, needles: string[]): Promise<string[]> {
  if (needles.length === 0) return [];
  return lines('grep', ['-rlF', '--devices=skip', ...needles.flatMap((n) => ['-e', n]), root]).catch(
    (err: Error & { code?: number }) => {
      if (err.code === 1) return [];
      throw err;
    },
  );
}

describe('images (podman)', function () {
  this.timeout(120_000);

  before(async function () {
    let reason = '';
    try {
      await podman('--version');
      const missing: string[] = [];
      for (const image of ALL) await podman('image', 'exists', image).catch(() => missing.push(image));
      if (missing.length > 0) reason = `not built: ${missing.join(', ')}; run 'npm run images:build'`;
    } catch {
      reason = 'podman is not installed (apt-get install -y podman)';
    }
    if (!reason) return;
    if (process.env.FAULTLINE_REQUIRE_IMAGES === '1') throw new Error(`FAULTLINE_REQUIRE_IMAGES=1 but ${reason}`);
    console.log(`      skipped: images ${reason}`);
    this.skip();
  });

  for (const image of ALL)
    it(`${image} runs as ${USERS[image]}`, async function () {
      assert.equal((await podman('image', 'inspect', '--format', '{{.Config.User}}', image)).trim(), USERS[image]);
      if (image === PAUSE_IMAGE) return; // FROM scratch: no `id` to ask
      const ids = await podman('run', '--rm', '--network=none', '--entrypoint', 'sh', image, '-c', 'echo "$(id -u):$(id -g)"');
      assert.equal(ids.trim(), USERS[image]);
    });

  for (const image of [IMAGES.webhook, IMAGES.proxy, IMAGES.init])
    it(`${image}: the faultline entrypoint starts and prints its usage`, async function () {
      assert.match(await podman('run', '--rm', '--network=none', image, '--help'), /^Usage: faultline <command>/m);
    });

  it('proxy: toxiproxy-server reports the version hack/controlplane/versions.env pins, as build.sh does', async function () {
    const { TOXIPROXY_VERSION } = await pinnedVersions();
    const out = await podman('run', '--rm', '--network=none', '--entrypoint', 'toxiproxy-server', IMAGES.proxy, '-version');
    assert.equal(out.trim(), `toxiproxy-server version ${TOXIPROXY_VERSION!.replace(/^v/, '')}`);
  });

  it('init: nft, tc, fusermount3 and libfaketime are in place', async function () {
    const out = await podman('run', '--rm', '--network=none', '--entrypoint', 'sh', IMAGES.init, '-c',
      'nft --version && tc -V && command -v fusermount3 && test -f /usr/local/lib/faultline/libfaketime.so.1 && echo ok');
    assert.match(out, /^nftables v/m);
    assert.match(out, /^ok$/m);
  });

  it('demo: answers /healthz on 8080 (HTTP/1.1) and / on 8081 (h2c) to its own curl', async function () {
    const id = (await podman('run', '--detach', '--network=none', DEMO_IMAGE)).trim();
    try {
      let out = '';
      for (let i = 0; i < 50 && !out.includes('200'); i++) {
        out = await podman('exec', id, 'curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1:8080/healthz').catch(() => '');
        if (!out.includes('200')) await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(out, '200', 'the demo never became ready');
      const h2 = await podman('exec', id, 'curl', '-sS', '--http2-prior-knowledge', '-w', '\n%{http_version}', 'http://127.0.0.1:8081/');
      assert.match(h2, /"protocol":"HTTP\/2"/);
      assert.match(h2, /\n2$/);
    } finally {
      await podman('rm', '--force', '--time', '0', id);
    }
  });

  it('pause: exits 0 on SIGTERM, well before a stop timeout', async function () {
    const id = (await podman('run', '--detach', '--network=none', PAUSE_IMAGE)).trim();
    try {
      const started = performance.now();
      await podman('stop', '--time', '10', id);
      assert.ok(performance.now() - started < 8000, 'pause ignored SIGTERM until SIGKILL');
      assert.equal((await podman('inspect', '--format', '{{.State.ExitCode}}', id)).trim(), '0');
    } finally {
      await podman('rm', '--force', id);
    }
  });

  describe('hold nothing of the build', function () {
    let markers: string[];
    before(async function () {
      markers = await buildCaMarkers();
    });

    for (const image of ALL)
      it(`${image}: no build-time CA (file, mount point or env) and no apt caches`, async function () {
        const config = JSON.parse(await podman('image', 'inspect', '--format', '{{json .Config.Env}}', image)) as string[];
        assert.deepEqual(config.filter((e) => /^(SSL_CERT_FILE|NODE_EXTRA_CA_CERTS)=/.test(e)), []);
        const history = await podman('history', '--no-trunc', '--format', '{{.CreatedBy}}', image);
        assert.doesNotMatch(history, /faultline-build-/, 'the CA path is in a layer of the shipped stage');
        await withImageRoot(image, async (root) => {
          assert.deepEqual(await lines('find', [root, '-name', '*faultline-build-*']), [], 'the CA mount point is inside');
          assert.deepEqual(await filesContaining(root, markers), [], 'the proxy CA is inside');
          const apt = ['var/cache/apt', 'var/lib/apt/lists'].map((d) => path.join(root, d));
          const cached = await lines('find', [...apt, '-type', 'f', '!', '-name', 'lock']).catch(() => []);
          assert.deepEqual(cached, [], 'apt caches left behind');
        });
      });
  });
});
