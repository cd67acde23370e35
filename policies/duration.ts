// Go's time.ParseDuration, exactly: Kubernetes users write durations the way
// every other Kubernetes API accepts them, so we accept precisely that syntax.

const NANOS_PER_UNIT: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's limit: a time.Duration is an int64 count of nanoseconds. */
const MAX_NANOS = 9223372036854775807;
/** The longest duration the API accepts, in whole milliseconds (either sign for offsets). */
export const MAX_DURATION_MS = Math.floor(MAX_NANOS / 1e6);

export type DurationResult = { ms: number } | { error: string };

/**
 * Parses a Go duration ("1h30m", "250ms", "1.5s", "-2h", "0") into
 * milliseconds (fractional below 1ms). Never throws.
 */
export function parseDuration(text: string): DurationResult {
  if (typeof text !== 'string') return { error: 'must be a string such as "250ms" or "1h30m"' };
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return { ms: 0 };
  if (rest === '') return { error: `invalid duration "${text}"` };
  let nanos = 0;
  while (rest !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/.exec(rest);
    const [whole = '', int = '', frac, unit = ''] = m ?? [];
    if (whole === '' || (int === '' && (frac ?? '') === '')) return { error: `invalid duration "${text}"` };
    if (unit === '') return { error: `missing unit in duration "${text}" (use ns, us, ms, s, m or h)` };
    const scale = NANOS_PER_UNIT[unit];
    if (scale === undefined) return { error: `unknown unit "${unit}" in duration "${text}" (use ns, us, ms, s, m or h)` };
    nanos += Number(`${int || '0'}.${frac || '0'}`) * scale;
    if (nanos > MAX_NANOS) return { error: `duration "${text}" is out of range` };
    rest = rest.slice(whole.length);
  }
  return { ms: (sign * nanos) / 1e6 };
}

/** Milliseconds of a duration already known to be valid; NaN otherwise. */
export function durationMs(text: string): number {
  const r = parseDuration(text);
  return 'ms' in r ? r.ms : Number.NaN;
}
