import assert from 'node:assert/strict';
import { decideRequest, faultHeader, isGrpc } from '../../sidecar/http-faults.ts';
import { grpcMessage } from '../../sidecar/http2-path.ts';
import type { PlannedHttpFault } from '../../contract/plans.ts';

function rule(over: Partial<PlannedHttpFault>): PlannedHttpFault {
  return { chaosId: 'shop/p', expiresAt: Number.MAX_SAFE_INTEGER, name: 'r', direction: 'inbound', match: {}, ...over };
}

/** A random source that replays the given draws and fails the test if asked for more. */
function draws(...values: number[]): () => number {
  return () => {
    const v = values.shift();
    assert.notEqual(v, undefined, 'decideRequest() drew more random numbers than expected');
    return v!;
  };
}

const get = { method: 'GET', url: '/api/items?x=1', headers: { 'x-canary': '1' } };

describe('sidecar HTTP fault decision (merge rule of policies/planner.ts)', () => {
  it('takes the delay of the first matching delay rule only; later delays never stack', () => {
    const faults = [
      rule({ name: 'a', delay: { fixedMs: 100, jitterMs: 0, percent: 100 } }),
      rule({ name: 'b', delay: { fixedMs: 900, jitterMs: 0, percent: 100 } }),
    ];
    const d = decideRequest(faults, get, draws());
    assert.equal(d.delayMs, 100);
    assert.deepEqual(d.fired.map((f) => f.fault.name), ['a']);
  });

  it('rolls the first matching delay once: a miss means no delay, not the next rule', () => {
    const faults = [
      rule({ name: 'a', delay: { fixedMs: 100, jitterMs: 0, percent: 30 } }),
      rule({ name: 'b', delay: { fixedMs: 900, jitterMs: 0, percent: 100 } }),
    ];
    assert.equal(decideRequest(faults, get, draws(0.5)).delayMs, 0);
    assert.equal(decideRequest(faults, get, draws(0.29)).delayMs, 100);
  });

  it('skips rules that do not match and takes the first that does', () => {
    const faults = [
      rule({ name: 'post-only', match: { methods: ['POST'] }, abort: { status: 500, percent: 100 } }),
      rule({ name: 'canary', match: { headers: { 'x-canary': '1' }, path: { prefix: '/api' } }, abort: { status: 503, percent: 100 } }),
    ];
    const d = decideRequest(faults, get, draws());
    assert.deepEqual(d.abort, { status: 503 });
  });

  it('applies delay and abort from different rules, delay first', () => {
    const faults = [
      rule({ name: 'slow', delay: { fixedMs: 50, jitterMs: 10, percent: 100 } }),
      rule({ name: 'fail', abort: { status: 429, percent: 100, body: 'slow down' } }),
    ];
    const d = decideRequest(faults, get, draws(1));
    assert.equal(d.delayMs, 60);
    assert.deepEqual(d.abort, { status: 429, body: 'slow down' });
    assert.equal(faultHeader(d), 'delay=60ms,abort=429');
  });

  it('matches exact paths without the query string and regexes against the whole path', () => {
    const exact = [rule({ match: { path: { exact: '/api/items' } }, abort: { status: 500, percent: 100 } })];
    assert.ok(decideRequest(exact, get).abort);
    const partial = [rule({ match: { path: { regex: 'api' } }, abort: { status: 500, percent: 100 } })];
    assert.equal(decideRequest(partial, get).abort, undefined);
  });

  it('applies gRPC rules to gRPC calls only, matching the method path, and reports a grpc-status abort', () => {
    const grpcRule = rule({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/AddItem' } }, abort: { status: 200, percent: 100, grpcStatus: 14, body: 'down' } });
    const call = { method: 'POST', url: '/shop.Cart/AddItem', headers: { 'content-type': 'application/grpc' } };
    const d = decideRequest([grpcRule], call);
    assert.deepEqual(d.abort, { status: 200, body: 'down', grpcStatus: 14 });
    assert.equal(faultHeader(d), 'abort=grpc-14');
    assert.equal(decideRequest([grpcRule], { ...call, url: '/shop.Cart/GetCart' }).abort, undefined, 'another method');
    assert.equal(decideRequest([grpcRule], { ...call, headers: { 'content-type': 'application/json' } }).abort, undefined, 'plain HTTP on the same path');
    assert.equal(decideRequest([grpcRule], { ...call, headers: { 'content-type': 'application/grpc-web+proto' } }).abort, undefined, 'grpc-web is not gRPC');
  });

  it('knows gRPC content types', () => {
    for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc+json', 'application/grpc;charset=utf-8']) assert.ok(isGrpc({ 'content-type': ct }), ct);
    for (const ct of [undefined, 'application/grpc-web', 'application/grpcx', 'text/plain']) assert.ok(!isGrpc({ 'content-type': ct }), String(ct));
  });

  it('percent-encodes grpc-message as the gRPC spec says (non-printable ASCII, and %)', () => {
    assert.equal(grpcMessage('cart down: 100%'), 'cart down: 100%25');
    assert.equal(grpcMessage('café\n'), 'caf%C3%A9%0A');
  });
});
