import assert from 'node:assert/strict';
import { parseDuration } from '../../policies/duration.ts';
import { parseTcRate } from '../../policies/rate.ts';

describe('policies: Go durations (time.ParseDuration)', () => {
  const valid: Array<[string, number]> = [
    ['0', 0], ['-0', 0], ['250ms', 250], ['1.5s', 1500], ['1h30m', 5_400_000], ['-2h', -7_200_000], ['+30m', 1_800_000],
    ['1h2m3s4ms5us6ns', 3_723_004.005006], ['10us', 0.01], ['10µs', 0.01], ['10μs', 0.01], ['100ns', 0.0001],
    ['.5s', 500], ['1.s', 1000], ['0s', 0], ['1m1m', 120_000], ['2562047h', 2562047 * 3_600_000],
  ];
  for (const [text, ms] of valid) {
    it(`parses "${text}" as ${ms}ms`, () => {
      const r = parseDuration(text);
      assert.ok('ms' in r, `expected ok, got ${JSON.stringify(r)}`);
      assert.ok(Math.abs(r.ms - ms) < 1e-6, `${r.ms} != ${ms}`);
    });
  }
  const invalid: Array<[string, RegExp]> = [
    ['', /invalid/], ['10', /missing unit/], ['1d', /unknown unit "d"/], ['-', /invalid/], ['.s', /invalid/], ['s', /invalid/],
    ['1.5.5s', /missing unit/], ['1 s', /unknown unit/], ['1S', /unknown unit "S"/], ['3000000h', /out of range/], ['++1s', /invalid/], ['1h-1m', /unknown unit "h-"/],
  ];
  for (const [text, why] of invalid) {
    it(`rejects "${text}"`, () => {
      const r = parseDuration(text);
      assert.ok('error' in r, `expected an error for "${text}"`);
      assert.match(r.error, why);
    });
  }
});

describe('policies: tc rates', () => {
  const valid: Array<[string, number]> = [
    ['1mbit', 1_000_000], ['500kbit', 500_000], ['10mbps', 80_000_000], ['1kbps', 8000], ['100', 100], ['100bit', 100],
    ['1Mbit', 1_000_000], ['1mibit', 1_048_576], ['2kibps', 16_384], ['1gbit', 1e9], ['1.5mbit', 1_500_000],
  ];
  for (const [text, bits] of valid) {
    it(`"${text}" is ${bits} bit/s`, () => assert.deepEqual(parseTcRate(text), { bitsPerSec: bits }));
  }
  for (const text of ['', 'fast', '1mb', '-1mbit', '0kbit', '1 mbit x', 'mbit']) {
    it(`rejects "${text}"`, () => assert.ok('error' in parseTcRate(text)));
  }
});
