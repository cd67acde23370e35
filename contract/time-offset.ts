// The faketime offset file (FAKETIME_TIMESTAMP_FILE): pod setup writes it
// first, the proxy rewrites it live, libfaketime in the app reads it. One
// spelling, so a rewrite changes nothing but the value.

/**
 * libfaketime's relative-offset syntax ("+7200s", "-90.5s"): a sign, seconds,
 * and the unit spelled out so the file reads unambiguously. Seconds keep
 * millisecond precision, which libfaketime parses as a float.
 */
export function formatOffset(offsetMs: number): string {
  const sign = offsetMs < 0 ? '-' : '+';
  const seconds = Math.abs(offsetMs) / 1000;
  return `${sign}${Number.isInteger(seconds) ? seconds : seconds.toFixed(3).replace(/0+$/, '')}s`;
}
