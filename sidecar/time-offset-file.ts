// Live time offset: libfaketime (LD_PRELOADed into the app by the init
// program, FAKETIME_NO_CACHE=1) re-reads its timestamp file on every clock
// call, so rewriting the file changes or ends the offset without a restart.
// The file is replaced atomically so a reader never sees a half-written value.
// Nothing is written unless the file exists: no file means the pod was not
// prepared for time faults and a stray file would mean nothing.

import { access } from 'node:fs/promises';
import { writeFileAtomic } from '../common/files.ts';
import type { PlannedTimeFault } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import { formatOffset } from '../contract/time-offset.ts';

export class FaketimeFile {
  private readonly file: string;
  private readonly log: Logger;
  private written: string | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(file: string, log: Logger) {
    this.file = file;
    this.log = log;
  }

  /** Writes the offset of `time` (or real time when absent) if it differs from what was written last. */
  apply(time: PlannedTimeFault | undefined): Promise<void> {
    const spec = formatOffset(time?.offsetMs ?? 0);
    if (spec === this.written) return this.queue;
    this.written = spec;
    this.queue = this.queue.then(() => this.write(spec, time?.chaosId));
    return this.queue;
  }

  private async write(spec: string, chaosId: string | undefined): Promise<void> {
    try {
      await access(this.file);
    } catch {
      return;
    }
    try {
      // 0o666: init made the file world-writable for this UID; keep it so.
      await writeFileAtomic(this.file, `${spec}\n`, 0o666);
      this.log.info({ file: this.file, offset: spec, chaosId }, 'time offset written');
    } catch (err) {
      this.written = undefined;
      this.log.error({ err: (err as Error).message, file: this.file }, 'cannot write the time offset');
    }
  }
}
