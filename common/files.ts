// The one way Faultline replaces a file that another process may be reading:
// key material under a watching webhook, the hand-off under the proxy, the
// faketime offset under libfaketime (which re-reads it on every clock call).
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path` with `data` so a concurrent reader sees either the old or the
 * new content, never a prefix: write a temp file in the same directory (same
 * filesystem, so rename(2) is atomic), fsync it, rename it over the target,
 * fsync the directory so the rename survives a crash. The temp file is created
 * with its final mode, so a key is never readable by others, even briefly, and
 * has a random name, so two writers never share one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      // The umask can only remove bits; chmod makes the mode exact either way.
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Copies `from` over `to` atomically (see writeFileAtomic), with `mode`. */
export async function copyFileAtomic(from: string, to: string, mode: number): Promise<void> {
  await writeFileAtomic(to, await readFile(from), mode);
}

/** The file's text, or undefined when it does not exist (other errors propagate). */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
