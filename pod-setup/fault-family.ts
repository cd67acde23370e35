// One fault family's kernel side, as Chaos Mesh's chaosimpl/<kind>/impl.go:
// `apply` puts a fault in place and `recover` takes it away, side by side in
// one module, so whoever changes what one writes sees what the other must
// undo. init.ts runs the applies at pod start (io's in fault-keeper.ts: a
// FUSE server must outlive init); fault-keeper.ts runs the recovers at
// expiry, on a lift, and on a restart after expiry.

export type FaultFamilyName = 'redirect' | 'network' | 'io' | 'time';

export interface FaultFamily<Fault, Applied, Recovered = void> {
  readonly name: FaultFamilyName;
  /** Puts `fault` in place; re-applying converges on the same state. */
  apply(fault: Fault): Promise<Applied>;
  /**
   * Takes `fault` away, leaving what was there before it. Idempotent, and
   * safe for a fault this process never applied: a restarted keeper cleans up
   * after a predecessor that was killed.
   */
  recover(fault: Fault): Promise<Recovered>;
}
