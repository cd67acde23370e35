// tc's rate syntax (tc(8), "RATES"), so `network.rate` means what it means to tc:
// bit/kbit/mbit/… are bits per second, bps/kbps/mbps/… are BYTES per second,
// the SI prefixes are powers of 1000 and the IEC ones (kibit, mibps…) of 1024,
// a bare number is bits per second, and tc matches units case-insensitively.

const SI = ['', 'k', 'm', 'g', 't'];
const IEC = ['', 'ki', 'mi', 'gi', 'ti'];

const BITS_PER_SEC_PER_UNIT: ReadonlyMap<string, number> = new Map(
  [
    ...SI.map((p, i) => [p, 1000 ** i] as const),
    ...IEC.slice(1).map((p, i) => [p, 1024 ** (i + 1)] as const),
  ].flatMap(([prefix, factor]) => [
    [`${prefix}bit`, factor],
    [`${prefix}bps`, factor * 8],
  ]),
);

export type RateResult = { bitsPerSec: number } | { error: string };

/** Parses a tc rate ("1mbit", "500kbit", "10mbps") into bits per second. Never throws. */
export function parseTcRate(text: string): RateResult {
  if (typeof text !== 'string') return { error: 'must be a string such as "1mbit"' };
  const m = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$/.exec(text.trim());
  if (!m) return { error: `invalid rate "${text}" (use tc syntax, e.g. "500kbit", "1mbit", "10mbps")` };
  const unit = (m[2] ?? '').toLowerCase();
  const factor = unit === '' ? 1 : BITS_PER_SEC_PER_UNIT.get(unit);
  if (factor === undefined) {
    return { error: `unknown rate unit "${m[2]}" in "${text}" (bit, kbit, mbit, gbit, tbit count bits/s; bps, kbps, mbps, gbps, tbps count bytes/s)` };
  }
  const bitsPerSec = Math.round(Number(m[1]) * factor);
  if (bitsPerSec <= 0) return { error: `rate "${text}" must be greater than zero` };
  return { bitsPerSec };
}
