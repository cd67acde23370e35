import type { PlannedTimeFault } from '../../contract/plans.ts';
import type { FaultFamily } from '../fault-family.ts';
import { installFaketime } from './install-faketime.ts';

export interface TimeApplied {
  offset: string;
  lib: string;
  rc: string;
}

/** libfaketime and the pod's offset file in the time volume (assertFaketimeLib is init's pre-check). */
export function timeFamily(opts: { timeDir: string; faketimeLib: string }): FaultFamily<PlannedTimeFault, TimeApplied> {
  return {
    name: 'time',
    apply: (fault) => installFaketime(opts.timeDir, opts.faketimeLib, fault.offsetMs),
    // The offset is live: the proxy rewrites faketime.rc to real time at
    // expiry or on a pause (sidecar/time-offset-file.ts), and the preloaded
    // library is inert at offset zero. faultline-kernel does not even mount
    // the time volume.
    async recover() {},
  };
}
