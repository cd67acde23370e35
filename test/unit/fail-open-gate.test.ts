// The fail-open gate's pure parts (nft text, the rendered watcher) and the
// watcher's state machine run for real by bash, with `nft` replaced by a
// recorder on PATH (the netns test runs it against the real nft), plus the
// proxy's and init's halves of the liveness FIFO.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, constants, mkdtempSync, openSync, readFileSync, readlinkSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../common/log.ts';
import { FAIL_OPEN_JUMP, gateChainLines, gateCommand, renderWatcherScript } from '../../pod-setup/redirect/fail-open-gate.ts';
import { ensureAliveFifo } from '../../pod-setup/redirect/alive-fifo.ts';
import { GATED_TABLE, renderCaptureRules, renderFailOpenWatcher } from '../../pod-setup/redirect/capture-rules.ts';
import { holdAlivePipe } from '../../sidecar/alive-pipe.ts';

const OPEN = 'flush chain inet faultline failopen; add rule inet faultline failopen counter accept';
const CLOSED = 'flush chain inet faultline failopen';

describe('fail-open gate: nft text', () => {
  it('renders an empty chain, a jump, and one atomic command per state', () => {
    assert.deepEqual(gateChainLines(), ['\tchain failopen {', '\t}']);
    assert.equal(FAIL_OPEN_JUMP, 'jump failopen');
    assert.equal(gateCommand('inet faultline', 'open'), OPEN);
    assert.equal(gateCommand('inet faultline', 'closed'), CLOSED);
    assert.equal(gateCommand('inet faultline_capture', 'closed'), 'flush chain inet faultline_capture failopen');
  });

  it('sits first in both capture base chains, with and without a mesh, so an open gate bypasses every redirect', () => {
    for (const mesh of [undefined, { uid: 1337 }]) {
      const rules = renderCaptureRules({
        proxyUid: 16337, inboundPort: 16006, outboundPort: 16001, proxyPorts: [16000],
        excludeInboundPorts: [], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [], ...(mesh ? { mesh } : {}),
      });
      assert.match(rules, /\tchain failopen {\n\t}\n/);
      for (const hook of ['prerouting', 'output']) assert.match(rules, new RegExp(`chain ${hook} {\\n\\t\\ttype nat hook ${hook} [^\\n]*\\n\\t\\tjump failopen\\n`), hook);
    }
  });

  it('refuses anything but "<family> <name>" as a table (the text runs with NET_ADMIN)', () => {
    for (const bad of ['inet', 'faultline', 'inet faultline; flush ruleset', "inet fault'line", 'bridge faultline', 'inet Faultline', ''])
      assert.throws(() => gateCommand(bad, 'open'), /not an nft table reference/, bad);
  });

  it('the watcher is valid bash carrying exactly those commands, single-quoted', () => {
    const script = renderFailOpenWatcher();
    assert.equal(spawnSync('bash', ['-n'], { input: script }).status, 0);
    // The gate lives in the capture table (capture-rules.ts).
    assert.ok(script.includes(`'${gateCommand(GATED_TABLE, 'open')}'`) && script.includes(`'${gateCommand(GATED_TABLE, 'closed')}'`));
    assert.ok(script.includes("alive='/var/run/faultline/proxy-alive'"));
  });
});

describe('fail-open gate: the watcher script, run by bash', function () {
  this.timeout(20_000);
  let dir: string;
  let watcher: ChildProcess | undefined;
  let holder: ChildProcess | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'faultline-failopen-'));
    // `nft` on PATH records each command line it is given.
    writeFileSync(join(dir, 'nft'), `#!/bin/bash\nprintf '%s\\n' "$*" >> ${dir}/nft.log\n`);
    chmodSync(join(dir, 'nft'), 0o755);
  });
  afterEach(() => {
    for (const p of [watcher, holder]) if (p?.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    watcher = holder = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({ PATH: `${dir}:/usr/bin:/bin` });
  const nftLog = (): string[] => {
    try {
      return readFileSync(join(dir, 'nft.log'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  async function until(what: string, ok: () => boolean): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; nft got ${JSON.stringify(nftLog())}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  /** A stand-in proxy: holds the FIFO read-write as the proxy does, until killed. */
  function hold(fifo: string): ChildProcess {
    return spawn('bash', ['-c', 'exec 3<>"$1"; exec sleep 30', 'holder', fifo], { stdio: 'ignore' });
  }
  function watch(fifo: string, failingNft = false): ChildProcess {
    if (failingNft) writeFileSync(join(dir, 'nft'), '#!/bin/bash\necho "Error: No such file or directory" >&2; exit 1\n');
    const script = join(dir, 'watch.sh');
    writeFileSync(script, renderWatcherScript('inet faultline', fifo));
    const p = spawn('bash', [script], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    output = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    return p;
  }
  let output = '';
  /** Exit code once the watcher's output is all in. */
  const closed = (p: ChildProcess): Promise<number | null> => new Promise((r) => p.on('close', (code) => r(code)));

  it('opens with no proxy, closes when the proxy takes its end, opens again the moment it dies', async () => {
    const fifo = join(dir, 'proxy-alive');
    await ensureAliveFifo(fifo);
    watcher = watch(fifo);
    await until('the gate opened at start', () => nftLog().length === 1);
    assert.deepEqual(nftLog(), [OPEN]);
    holder = hold(fifo);
    await until('the gate closed', () => nftLog().length === 2);
    assert.equal(nftLog()[1], CLOSED);
    holder.kill('SIGKILL');
    await until('the gate opened on death', () => nftLog().length === 3);
    assert.equal(nftLog()[2], OPEN);
    holder = hold(fifo);
    await until('closed again on restart', () => nftLog().length === 4);
    assert.equal(nftLog()[3], CLOSED);
    assert.equal(watcher.exitCode, null, 'still running');
  });

  it('starting while the proxy is up closes the gate without waiting (no blocking open)', async () => {
    const fifo = join(dir, 'proxy-alive');
    await ensureAliveFifo(fifo);
    holder = hold(fifo);
    const pid = holder.pid!;
    await until('the stand-in proxy holding its end', () => {
      try {
        return readlinkSync(`/proc/${pid}/fd/3`) === fifo;
      } catch {
        return false;
      }
    });
    watcher = watch(fifo);
    await until('the gate closed', () => nftLog().length === 1);
    assert.deepEqual(nftLog(), [CLOSED]);
  });

  it('exits rather than spin when the FIFO was replaced by a regular file (every open would return at once)', async () => {
    const fifo = join(dir, 'proxy-alive');
    await ensureAliveFifo(fifo);
    holder = hold(fifo);
    watcher = watch(fifo);
    await until('the gate closed', () => nftLog().includes(CLOSED));
    rmSync(fifo);
    writeFileSync(fifo, 'not a fifo\n');
    holder.kill('SIGKILL');
    assert.equal(await closed(watcher), 1);
    assert.deepEqual(nftLog().slice(-1), [OPEN], 'the gate is left open: the proxy is dead');
    assert.match(output, /is not a FIFO/);
  });

  it('exits non-zero, saying why, without a FIFO or when nft fails (the kubelet restarts it)', async () => {
    const odd = join(dir, "no'fifo");
    watcher = watch(odd);
    assert.equal(await closed(watcher), 1);
    const line = JSON.parse(output) as { level: number; msg: string };
    assert.equal(line.level, 50);
    assert.equal(line.msg, `${odd} is not a FIFO (faultline-init creates it); exiting`);

    const fifo = join(dir, 'proxy-alive');
    await ensureAliveFifo(fifo);
    watcher = watch(fifo, true);
    assert.equal(await closed(watcher), 1);
    assert.match(output, /could not set the fail-open gate open \(nft failed\)/);
  });
});

describe('fail-open gate: the liveness FIFO', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'faultline-alive-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('init creates it 0666, keeps an existing one and replaces anything else', async () => {
    const path = join(dir, 'proxy-alive');
    await ensureAliveFifo(path);
    const made = statSync(path);
    assert.ok(made.isFIFO());
    assert.equal(made.mode & 0o777, 0o666);
    await ensureAliveFifo(path);
    assert.equal(statSync(path).ino, made.ino);
    rmSync(path);
    writeFileSync(path, 'stale');
    await ensureAliveFifo(path);
    assert.ok(statSync(path).isFIFO());
  });

  it('the proxy holds a writer until release: a reader sees "no data yet", then EOF', async () => {
    const path = join(dir, 'proxy-alive');
    await ensureAliveFifo(path);
    const alive = holdAlivePipe(path, createLogger('test', 'silent'));
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      assert.throws(() => readSync(reader, Buffer.alloc(1)), { code: 'EAGAIN' });
      alive.release();
      alive.release();
      assert.equal(readSync(reader, Buffer.alloc(1)), 0);
    } finally {
      closeSync(reader);
    }
  });

  it('a missing FIFO is not fatal to the proxy', () => {
    holdAlivePipe(join(dir, 'absent'), createLogger('test', 'silent')).release();
  });
});
