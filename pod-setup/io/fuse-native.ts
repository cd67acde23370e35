import { createRequire } from 'node:module';
import type { FuseOps } from './passthrough.ts';

/** The slice of fuse-native's API Faultline uses (the package ships no types). */
export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
export interface FuseOptions {
  allowOther?: boolean;
  defaultPermissions?: boolean;
  fsname?: string;
  subtype?: string;
  timeout?: false | number;
  attrTimeout?: number;
  entryTimeout?: number;
  /** libfuse mount options fuse-native has no setting for (e.g. "direct_io"). */
  extraOptions?: string[];
}
type FuseConstructor = new (mountpoint: string, ops: FuseOps, opts: FuseOptions) => FuseInstance;

/** fuse-native's class as far as subclassing needs it (checked against 2.2.6). */
interface FuseNativeClass {
  new (mountpoint: string, ops: FuseOps, opts: FuseOptions): FuseInstance & { opts: FuseOptions; _fuseOptions(): string };
}

let cached: FuseConstructor | undefined;

/**
 * Loads fuse-native on first use only: its prebuilt addon links libfuse.so.2
 * at load time, and nothing but the FUSE server should need libfuse to be
 * installed (`faultline init`, the proxy and the webhook share this code base).
 */
export function loadFuse(): FuseConstructor {
  if (cached) return cached;
  let Base: FuseNativeClass;
  try {
    Base = createRequire(import.meta.url)('fuse-native') as FuseNativeClass;
  } catch (err) {
    throw new Error(`cannot load fuse-native (is libfuse2 installed? apt-get install libfuse2): ${(err as Error).message}`);
  }
  // fuse-native builds libfuse's "-o a,b,c" from a fixed list of settings;
  // extending that one method is the narrowest way to pass the others.
  cached = class extends Base {
    override _fuseOptions(): string {
      const base = super._fuseOptions();
      const extra = this.opts.extraOptions ?? [];
      if (extra.length === 0) return base;
      return base === '' ? `-o${extra.join(',')}` : `${base},${extra.join(',')}`;
    }
  };
  return cached;
}
