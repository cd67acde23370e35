// writeFileAtomic: what a webhook watching the directory can observe.
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KEY_MODE } from '../../certs/file-modes.ts';
import { writeFileAtomic } from '../../common/files.ts';
import { tempDir } from '../support/certs-tools.ts';

describe('certs: atomic file replacement', function () {
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeEach(async function () {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async function () {
    await cleanup();
  });

  it('a concurrent reader only ever sees a complete old or new file', async function () {
    const path = join(dir, 'tls.crt');
    // Large enough that a non-atomic write is observable mid-way.
    const versions = ['a', 'b'].map((c) => c.repeat(4 << 20));
    await writeFile(path, versions[0]!);
    let writing = true;
    const torn: string[] = [];
    const seen = new Set<string>();
    const reader = (async () => {
      while (writing) {
        const text = await readFile(path, 'utf8');
        if (versions.includes(text)) seen.add(text.slice(0, 1));
        else torn.push(`${text.length} bytes, first '${text.slice(0, 1)}', last '${text.slice(-1)}'`);
      }
    })();
    try {
      for (let i = 1; i <= 20; i++) await writeFileAtomic(path, versions[i % 2]!, 0o644);
    } finally {
      writing = false;
      await reader;
    }
    assert.deepEqual(torn, [], 'torn reads');
    assert.ok(seen.size >= 1, 'the reader ran');
    assert.deepEqual(await readdir(dir), ['tls.crt'], 'no temp files left');
  });

  it('replaces a world-readable file with an owner-only one', async function () {
    const path = join(dir, 'tls.key');
    await writeFile(path, 'old', { mode: 0o644 });
    await writeFileAtomic(path, 'new', KEY_MODE);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(await readFile(path, 'utf8'), 'new');
  });

  it('leaves no temp file behind when the rename fails', async function () {
    // Renaming a file over a non-empty directory fails (EISDIR/ENOTEMPTY).
    const target = join(dir, 'tls.crt');
    await mkdir(join(target, 'sub'), { recursive: true });
    await assert.rejects(writeFileAtomic(target, 'x', 0o644));
    assert.deepEqual(await readdir(dir), ['tls.crt']);
  });
});
