// hack/**/*.sh are shellcheck-clean, and kind-up.sh stops with a clear message,
// before doing anything, when a prerequisite is missing.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../support/manifests-kustomize.ts';

const run = promisify(execFile);
const BASH = '/bin/bash';
const KIND_UP = path.join(repoRoot, 'hack', 'kind-up.sh');

/** Runs kind-up.sh with PATH = only `dir`, so only the stubs written there exist. */
function kindUpWithPath(dir: string): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(BASH, [KIND_UP], {
    env: { PATH: dir, HOME: dir },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

/** An executable stub that prints nothing and exits with `code`. */
async function stub(dir: string, name: string, code: number): Promise<void> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\nexit ${code}\n`);
  await chmod(file, 0o755);
}

describe('manifests: hack scripts', function () {
  this.timeout(60_000);
  /** An empty directory, the only PATH the prerequisite tests give a script. */
  let dir: string;
  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'faultline-hack-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('are shellcheck-clean', async function () {
    const which = spawnSync('shellcheck', ['--version']);
    if (which.error) throw new Error('shellcheck is required for this test (apt-get install shellcheck)');
    const scripts = (await readdir(path.join(repoRoot, 'hack'), { recursive: true })).filter((f) => f.endsWith('.sh'));
    for (const script of ['kind-up.sh', 'kind-down.sh', 'images/build.sh', 'images/load.sh'])
      assert.ok(scripts.includes(script), `${script} not among ${scripts.join(', ')}`);
    // -x follows `source`d files, as the scripts' directives expect.
    await run('shellcheck', ['-x', ...scripts], { cwd: path.join(repoRoot, 'hack') }).catch((err: Error & { stdout?: string }) => {
      throw new Error(`shellcheck found problems:\n${err.stdout ?? err.message}`);
    });
  });

  describe('hack/images prerequisites', function () {
    const script = (name: string, ...args: string[]) =>
      spawnSync(BASH, [path.join(repoRoot, 'hack', 'images', name), ...args], { env: { PATH: dir, HOME: dir }, encoding: 'utf8', timeout: 20_000 });

    it('build.sh without podman: names the apt package, builds nothing', function () {
      const r = script('build.sh');
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /hack\/images\/build\.sh: error: podman not found in PATH; install it with: apt-get install -y podman/);
      assert.equal(r.stdout, '');
    });

    it('build.sh with podman but without mmdebstrap: names mmdebstrap', async function () {
      await stub(dir, 'podman', 0);
      const r = script('build.sh');
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /error: mmdebstrap not found in PATH; install it with: apt-get install -y mmdebstrap/);
    });

    it('load.sh: a usage line without a socket, and a clear error for a path that is not one', function () {
      assert.match(script('load.sh').stderr, /usage: hack\/images\/load\.sh CONTAINERD-SOCKET/);
      const r = script('load.sh', dir);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /is not a socket; is containerd running with this address\?/);
    });
  });

  describe('kind-up.sh prerequisites', function () {

    it('without docker in PATH: exits non-zero naming docker', function () {
      const r = kindUpWithPath(dir);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /hack\/kind-up\.sh: error: docker not found in PATH/);
      assert.match(r.stderr, /install Docker/);
      assert.equal(r.stdout, '', 'nothing ran');
    });

    it('with docker but without kind: names kind, not docker', async function () {
      await stub(dir, 'docker', 0);
      const r = kindUpWithPath(dir);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /error: kind not found in PATH/);
      assert.doesNotMatch(r.stderr, /docker not found/);
    });

    it('with every tool but a stopped Docker engine: says the engine is not running', async function () {
      await stub(dir, 'docker', 1); // `docker info` fails as it does with no daemon
      await stub(dir, 'kind', 0);
      await stub(dir, 'kubectl', 0);
      const r = kindUpWithPath(dir);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /error: the Docker engine is not running/);
    });
  });
});
