// Image names and tags are defined once, in common/images.ts. These tests
// render every kustomization and read the Dockerfiles, and fail on any drift.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_REGISTRY, IMAGES } from '../../common/images.ts';
import { pinnedVersions } from '../../controlplane/binaries.ts';
import { DEFAULT_PROXY_UID } from '../../policies/wellknown.ts';
import { KUSTOMIZATIONS, field, find, podContainers, render, repoRoot } from '../support/manifests-kustomize.ts';

/** Every string in the tree that names one of our images, with where it was found. */
function faultlineImageRefs(value: unknown, at = ''): Array<{ at: string; ref: string }> {
  if (typeof value === 'string') return value.startsWith(`${IMAGE_REGISTRY}/`) ? [{ at, ref: value }] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => faultlineImageRefs(v, `${at}[${i}]`));
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => faultlineImageRefs(v, at ? `${at}.${k}` : k));
  return [];
}

function env(container: Record<string, unknown>, name: string): unknown {
  const vars = (container.env as Array<{ name: string; value?: string }> | undefined) ?? [];
  return vars.find((v) => v.name === name)?.value;
}

async function dockerfile(name: string): Promise<string> {
  return readFile(path.join(repoRoot, 'images', `${name}.Dockerfile`), 'utf8');
}

/** Default of a Dockerfile ARG (the first declaration). */
function argDefault(text: string, arg: string): string | undefined {
  return new RegExp(`^ARG ${arg}=(\\S+)`, 'm').exec(text)?.[1];
}

describe('manifests: images agree with common/images.ts', function () {
  this.timeout(60_000);

  for (const dir of KUSTOMIZATIONS) {
    describe(dir, function () {
      it('runs the webhook image and injects the proxy and init images', async function () {
        const deployment = find(await render(dir), 'Deployment', 'faultline-webhook', 'faultline-system');
        const [webhook, ...others] = podContainers(deployment);
        assert.equal(others.length, 0, 'the webhook pod has exactly one container');
        assert.equal(webhook!.image, IMAGES.webhook);
        assert.equal(env(webhook!, 'FAULTLINE_PROXY_IMAGE'), IMAGES.proxy);
        assert.equal(env(webhook!, 'FAULTLINE_INIT_IMAGE'), IMAGES.init);
      });

      it('names no Faultline image, anywhere, other than those in common/images.ts', async function () {
        const known = new Set<string>(Object.values(IMAGES));
        const refs = (await render(dir)).flatMap((o) => faultlineImageRefs(o, `${o.kind}/${o.metadata.name}`));
        assert.ok(refs.length >= 3, 'expected at least the three image references');
        for (const { at, ref } of refs) assert.ok(known.has(ref), `${at} = ${ref} is not one of ${[...known].join(', ')}`);
      });
    });
  }

  describe('Dockerfiles', function () {
    it('use the Node version the tests run (package-lock `node` devDependency)', async function () {
      const lock = JSON.parse(await readFile(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { version?: string }>;
      };
      const nodeVersion = lock.packages['node_modules/node']?.version;
      assert.ok(nodeVersion, 'package-lock.json pins node');
      for (const name of ['webhook', 'proxy', 'init', 'demo'])
        assert.equal(argDefault(await dockerfile(name), 'NODE_VERSION'), nodeVersion, `${name}.Dockerfile NODE_VERSION`);
    });

    it('build toxiproxy-server at the version hack/controlplane/versions.env pins', async function () {
      const { TOXIPROXY_VERSION } = await pinnedVersions();
      assert.ok(TOXIPROXY_VERSION);
      assert.equal(argDefault(await dockerfile('proxy'), 'TOXIPROXY_VERSION'), TOXIPROXY_VERSION);
    });

    it('run the proxy as the UID that redirection excludes, the webhook as the Deployment asks', async function () {
      assert.match(await dockerfile('proxy'), new RegExp(`^USER ${DEFAULT_PROXY_UID}:${DEFAULT_PROXY_UID}$`, 'm'));
      const deployment = find(await render('manifests'), 'Deployment', 'faultline-webhook');
      const uid = field(deployment, 'spec.template.spec.securityContext.runAsUser');
      assert.equal(typeof uid, 'number');
      assert.match(await dockerfile('webhook'), new RegExp(`^USER ${String(uid)}:${String(uid)}$`, 'm'));
      assert.match(await dockerfile('init'), /^USER 0:0$/m, 'init must be root (nft, tc, FUSE mounts)');
    });

    it('install production dependencies only and copy no tests, benchmarks or scripts', async function () {
      for (const name of ['webhook', 'proxy', 'init']) {
        const text = await dockerfile(name);
        assert.match(text, /npm ci --omit=dev/, name);
        const copies = [...text.matchAll(/^COPY (?!--from)(\S+)/gm)].map((m) => m[1]);
        for (const forbidden of ['test', 'bench', 'hack', 'docs', 'manifests', '.'])
          assert.ok(!copies.includes(forbidden), `${name}.Dockerfile copies ${forbidden}`);
        const ignore = await readFile(path.join(repoRoot, 'images', `${name}.Dockerfile.dockerignore`), 'utf8');
        assert.match(ignore, /^\*$/m, `${name}: the ignore file must start from "exclude everything"`);
        for (const forbidden of ['test', 'bench', 'hack', 'node_modules'])
          assert.doesNotMatch(ignore, new RegExp(`^!${forbidden}`, 'm'), `${name}: ${forbidden} re-included`);
      }
    });
  });
});
