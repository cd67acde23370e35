import assert from 'node:assert/strict';
import type { PlannedToxic } from '../../contract/plans.ts';
import { diff, type ActualProxy, type DesiredProxy } from '../../sidecar/toxiproxy-diff.ts';

const latency = (ms: number, name = 'lat'): PlannedToxic => ({ name, type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: ms } });
const actualOf = (name: string, upstream: string, toxics: PlannedToxic[], enabled = true): ActualProxy => ({
  name, listen: '127.0.0.1:40000', upstream, enabled,
  // Toxiproxy echoes every attribute of the type, its defaults included.
  toxics: toxics.map((t) => ({ ...t, attributes: { jitter: 0, ...t.attributes } })),
});
/** "op proxy [toxic]" per action, in order. */
function ops(actions: ReturnType<typeof diff>): string[] {
  return actions.map((a) => {
    const proxy = a.op === 'createProxy' ? a.name : typeof a.proxy === 'string' ? a.proxy : a.proxy.name;
    const toxic = 'toxic' in a ? a.toxic.name : a.op === 'removeToxic' ? a.name : '';
    return `${a.op} ${proxy} ${toxic}`.trim();
  });
}
const none = () => false;

describe('sidecar: Toxiproxy diff (pure)', () => {
  const desired = new Map<string, DesiredProxy>([['in-8080', { upstream: '127.0.0.1:8080', toxics: [latency(100)] }]]);

  it('creates a missing proxy with its toxics', () => {
    assert.deepEqual(ops(diff({}, desired, none)), ['createProxy in-8080', 'addToxic in-8080 lat']);
  });

  it('writes nothing when Toxiproxy already matches (defaults echoed back count as equal)', () => {
    assert.deepEqual(diff({ 'in-8080': actualOf('in-8080', '127.0.0.1:8080', [latency(100)]) }, desired, none), []);
  });

  it('updates a toxic in place, replaces one whose type or stream changed, removes stale ones', () => {
    const actual = { 'in-8080': actualOf('in-8080', '127.0.0.1:8080', [latency(50), { ...latency(1, 'gone') }]) };
    assert.deepEqual(ops(diff(actual, desired, none)), ['updateToxic in-8080 lat', 'removeToxic in-8080 gone']);
    const upstream = new Map([['in-8080', { upstream: '127.0.0.1:8080', toxics: [{ ...latency(100), stream: 'upstream' as const }] }]]);
    assert.deepEqual(ops(diff({ 'in-8080': actualOf('in-8080', '127.0.0.1:8080', [latency(100)]) }, upstream, none)), ['removeToxic in-8080 lat', 'addToxic in-8080 lat']);
  });

  it('re-points or re-enables a proxy in place, keeping its listener', () => {
    const moved = diff({ 'in-8080': actualOf('in-8080', '127.0.0.1:9090', [latency(100)], false) }, desired, none);
    assert.deepEqual(ops(moved), ['updateProxy in-8080']);
    assert.equal(moved[0]!.op === 'updateProxy' && moved[0]!.upstream, '127.0.0.1:8080');
  });

  it('deletes an unwanted proxy, but only strips its toxics while connections still use it', () => {
    const actual = { old: actualOf('old', '127.0.0.1:1', [latency(5)]) };
    assert.deepEqual(ops(diff(actual, new Map(), none)), ['deleteProxy old']);
    assert.deepEqual(ops(diff(actual, new Map(), (n) => n === 'old')), ['removeToxic old lat']);
  });
});
