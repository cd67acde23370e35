import { createLogger } from '../../common/log.ts';
import { DEFAULT_FAKETIME_LIB } from '../../pod-setup/time/install-faketime.ts';
import { runInit } from '../../pod-setup/init.ts';
import { loadInitPlan } from '../../pod-setup/load-plan.ts';
import { PLAN_ENV, RUN_MOUNT_PATH, TIME_MOUNT_PATH } from '../../contract/pod-layout.ts';
import { str, type Command } from '../command.ts';

export const initCommand: Command = {
  usage: `Usage: faultline init [options]

Applies the InitPlan from $${PLAN_ENV} (or --plan-file): the nftables capture
table (every TCP connection to the proxy's two listeners), network faults (netem, or nft loss / tbf / proxy-side
delay where the kernel lacks sch_netem), the proxy hand-off file and the
libfaketime time offset. Re-running converges to the same state.
Exits non-zero, before changing anything where possible, when a step cannot run.

Options:
  --plan-file <path>     Read the plan from a file instead of $FAULTLINE_PLAN
  --run-dir <dir>        faultline-run emptyDir (default ${RUN_MOUNT_PATH})
  --time-dir <dir>       faultline-time emptyDir (default ${TIME_MOUNT_PATH})
  --faketime-lib <path>  libfaketime to copy (default ${DEFAULT_FAKETIME_LIB})`,
  options: {
    'plan-file': { type: 'string' },
    'run-dir': { type: 'string' },
    'time-dir': { type: 'string' },
    'faketime-lib': { type: 'string' },
  },
  async run(values) {
    const log = createLogger('init');
    try {
      await runInit(
        await loadInitPlan(str(values, 'plan-file')),
        {
          runDir: str(values, 'run-dir') ?? RUN_MOUNT_PATH,
          timeDir: str(values, 'time-dir') ?? TIME_MOUNT_PATH,
          faketimeLib: str(values, 'faketime-lib') ?? DEFAULT_FAKETIME_LIB,
        },
        log,
      );
      return 0;
    } catch (err) {
      // One clear line, no stack (plan, capability and tool errors all carry
      // their cause): this is what `kubectl logs -c faultline-init` shows.
      const message = (err as Error).message;
      log.error(`faultline init failed: ${message}`);
      return 1;
    }
  },
};
