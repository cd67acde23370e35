import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import type { IoMethod } from '../../policies/types.ts';
import { decideIoCall, type IoRule } from './io-rules.ts';

/** fuse-native's callback convention: first argument 0 or a negative errno (for read/write: the byte count). */
type Cb = (result: number, ...values: unknown[]) => void;

/** The subset of fuse-native's operation table this filesystem implements. */
export type FuseOps = Record<string, (...args: never[]) => void>;

const EIO = -osConstants.errno.EIO;

function errnoOf(err: NodeJS.ErrnoException): number {
  // libuv reports errno negated already, which is exactly what FUSE wants.
  return typeof err.errno === 'number' && err.errno < 0 ? err.errno : EIO;
}

function done(cb: Cb) {
  return (err: NodeJS.ErrnoException | null) => cb(err ? errnoOf(err) : 0);
}

/**
 * Runs `fn` no sooner than `ms` from now. libuv measures timers from the
 * loop's cached clock, which lags real time when the loop is busy, so a bare
 * setTimeout can fire a few milliseconds early; a delay fault promises a floor.
 */
function atLeast(ms: number, fn: () => void): void {
  const due = performance.now() + ms;
  const check = (): void => {
    const left = due - performance.now();
    if (left > 0) setTimeout(check, Math.ceil(left));
    else fn();
  };
  setTimeout(check, ms);
}

export interface PassthroughOptions {
  rules: readonly IoRule[];
  now?: () => number;
  random?: () => number;
  /** Called for every fault injected, for counters and logs. */
  onFault?: (method: IoMethod, path: string, errno: number | undefined, delayMs: number) => void;
}

/**
 * A passthrough filesystem over `backing` that injects the policy's faults.
 * Every path FUSE hands us is absolute from the mount root and already free of
 * "..", so joining it under `backing` cannot escape the volume.
 */
export function passthroughOps(backing: string, opts: PassthroughOptions): FuseOps {
  const now = opts.now ?? Date.now;
  const real = (p: string): string => join(backing, p);

  /** Applies the rules, then either fails the call or runs it (after any delay). */
  function faulted(method: IoMethod, path: string, cb: Cb, op: () => void): void {
    const d = decideIoCall(opts.rules, method, path, now(), opts.random);
    if (!d) return op();
    opts.onFault?.(method, path, d.errno, d.delayMs);
    const finish = d.errno !== undefined ? () => cb(d.errno!) : op;
    if (d.delayMs > 0) atLeast(d.delayMs, finish);
    else finish();
  }

  /**
   * fuse-native does not expose the caller's uid, and the server runs as root:
   * new entries take their parent directory's owner, which keeps files an
   * app creates in its own volume writable by that app.
   */
  function inheritOwner(p: string, cb: Cb, result: number): void {
    fs.stat(dirname(p), (err, parent) => {
      if (err) return cb(result);
      fs.lchown(p, parent.uid, parent.gid, () => cb(result));
    });
  }

  const statCb = (cb: Cb) => (err: NodeJS.ErrnoException | null, st?: fs.Stats) => (err ? cb(errnoOf(err)) : cb(0, st));

  return {
    getattr: (path: string, cb: Cb) => faulted('getattr', path, cb, () => fs.lstat(real(path), statCb(cb))),
    fgetattr: (path: string, fd: number, cb: Cb) => faulted('getattr', path, cb, () => fs.fstat(fd, statCb(cb))),
    access: (path: string, mode: number, cb: Cb) => fs.access(real(path), mode, done(cb)),
    statfs: (_path: string, cb: Cb) =>
      fs.statfs(backing, (err, s) =>
        err
          ? cb(errnoOf(err))
          : cb(0, { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, namemax: 255 }),
      ),
    readdir: (path: string, cb: Cb) =>
      faulted('readdir', path, cb, () => fs.readdir(real(path), (err, names) => (err ? cb(errnoOf(err)) : cb(0, names)))),
    open: (path: string, flags: number, cb: Cb) =>
      faulted('open', path, cb, () => fs.open(real(path), flags, (err, fd) => (err ? cb(errnoOf(err)) : cb(0, fd)))),
    create: (path: string, mode: number, cb: Cb) =>
      faulted('create', path, cb, () =>
        fs.open(real(path), fs.constants.O_CREAT | fs.constants.O_RDWR, mode, (err, fd) =>
          err ? cb(errnoOf(err)) : inheritOwner(real(path), (r) => cb(r, fd), 0),
        ),
      ),
    read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      faulted('read', path, cb, () => fs.read(fd, buf, 0, len, pos, (err, n) => cb(err ? errnoOf(err) : n))),
    write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      faulted('write', path, cb, () => fs.write(fd, buf, 0, len, pos, (err, n) => cb(err ? errnoOf(err) : n))),
    flush: (_path: string, _fd: number, cb: Cb) => cb(0),
    fsync: (path: string, datasync: boolean, fd: number, cb: Cb) =>
      faulted('fsync', path, cb, () => (datasync ? fs.fdatasync(fd, done(cb)) : fs.fsync(fd, done(cb)))),
    release: (_path: string, fd: number, cb: Cb) => fs.close(fd, done(cb)),
    truncate: (path: string, size: number, cb: Cb) => faulted('truncate', path, cb, () => fs.truncate(real(path), size, done(cb))),
    ftruncate: (path: string, fd: number, size: number, cb: Cb) => faulted('truncate', path, cb, () => fs.ftruncate(fd, size, done(cb))),
    unlink: (path: string, cb: Cb) => faulted('unlink', path, cb, () => fs.unlink(real(path), done(cb))),
    mkdir: (path: string, mode: number, cb: Cb) =>
      faulted('mkdir', path, cb, () => fs.mkdir(real(path), { mode }, (err) => (err ? cb(errnoOf(err)) : inheritOwner(real(path), cb, 0)))),
    rmdir: (path: string, cb: Cb) => fs.rmdir(real(path), done(cb)),
    rename: (src: string, dest: string, cb: Cb) => faulted('rename', src, cb, () => fs.rename(real(src), real(dest), done(cb))),
    chmod: (path: string, mode: number, cb: Cb) => fs.chmod(real(path), mode, done(cb)),
    chown: (path: string, uid: number, gid: number, cb: Cb) => fs.lchown(real(path), uid, gid, done(cb)),
    utimens: (path: string, atime: number, mtime: number, cb: Cb) =>
      fs.utimes(real(path), new Date(atime), new Date(mtime), done(cb)),
    readlink: (path: string, cb: Cb) => fs.readlink(real(path), (err, target) => (err ? cb(errnoOf(err)) : cb(0, target))),
    symlink: (target: string, path: string, cb: Cb) =>
      fs.symlink(target, real(path), (err) => (err ? cb(errnoOf(err)) : inheritOwner(real(path), cb, 0))),
    link: (src: string, dest: string, cb: Cb) => fs.link(real(src), real(dest), done(cb)),
  };
}
