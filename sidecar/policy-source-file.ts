// A static LiveFaultPlan in a JSON file, reloaded when it changes: the policy
// source of the datapath tests and the netns pod simulator. The directory is
// watched (not the file) so atomic replace-by-rename is seen; a missing file is
// the empty plan; a malformed file is reported and the last good plan stays.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { LiveFaultPlan } from '../contract/plans.ts';
import type { Logger } from '../common/log.ts';
import { decodeLivePlan } from '../contract/codec.ts';
import { EMPTY_PLAN } from './live-plan.ts';
import type { PolicySource } from './policy-source.ts';

/** Editors and `>` redirection write in several steps; settle before reading. */
const SETTLE_MS = 20;

export class FilePolicySource implements PolicySource {
  readonly name = 'file';
  private readonly file: string;
  private readonly log: Logger;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastText: string | undefined;

  constructor(file: string, log: Logger) {
    this.file = path.resolve(file);
    this.log = log;
  }

  async start(onPlan: (plan: LiveFaultPlan) => void): Promise<void> {
    const base = path.basename(this.file);
    this.watcher = watch(path.dirname(this.file), (_event, name) => {
      if (name !== null && name !== base) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.load(onPlan), SETTLE_MS);
    });
    this.watcher.on('error', (err) => this.log.error({ err: err.message, file: this.file }, 'plan file watch failed'));
    await this.load(onPlan);
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
  }

  private async load(onPlan: (plan: LiveFaultPlan) => void): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log.error({ err: (err as Error).message, file: this.file }, 'cannot read the plan file; keeping the last plan');
        return;
      }
      text = '';
    }
    if (text === this.lastText) return;
    this.lastText = text;
    if (text.trim() === '') return onPlan(EMPTY_PLAN);
    try {
      onPlan(decodeLivePlan(JSON.parse(text)));
    } catch (err) {
      this.log.error({ err: (err as Error).message, file: this.file }, 'invalid plan file; keeping the last plan');
    }
  }
}
