import assert from 'node:assert/strict';
import { PortObservations, whyFaultCannotApply } from '../../sidecar/capture/observations.ts';

describe('capture: what the datapath learnt per inbound port', () => {
  it('keeps the protocols seen and whether the app served the port', () => {
    const o = new PortObservations();
    assert.deepEqual(o.of(8080), { port: 8080, protocols: [], notServed: false });
    o.record(8080, 'http1');
    o.record(8080, 'h2');
    o.record(8080, 'http1');
    o.record(8443, 'tls');
    o.recordRefused(9000);
    assert.deepEqual(o.snapshot(), [
      { port: 8080, protocols: ['h2c', 'http1'], notServed: false },
      { port: 8443, protocols: ['tls'], notServed: false },
      { port: 9000, protocols: [], notServed: true },
    ]);
    // The app came up: the port is served again.
    o.recordServed(9000);
    assert.equal(o.of(9000).notServed, false);
  });

  it('says why an HTTP or gRPC fault cannot apply: port not served, TLS, another protocol', () => {
    const o = new PortObservations();
    o.record(8443, 'tls');
    o.record(6379, 'raw');
    o.record(8080, 'http1');
    o.record(8081, 'h2');
    o.record(8082, 'tls');
    o.record(8082, 'http1');
    o.recordRefused(9999);
    const http = { protocol: undefined };
    const grpc = { protocol: 'grpc' as const };
    assert.deepEqual(whyFaultCannotApply(http, o.of(8443)), { reason: 'Tls', message: 'port 8443 carries TLS; HTTP faults cannot apply, TCP faults do' });
    assert.deepEqual(whyFaultCannotApply(http, o.of(6379)), { reason: 'Protocol', message: 'port 6379 carries a protocol other than HTTP; HTTP faults cannot apply, TCP faults do' });
    assert.deepEqual(whyFaultCannotApply(http, o.of(9999)), { reason: 'PortNotServed', message: 'nothing serves port 9999 in the pod; the fault has no traffic to act on' });
    assert.equal(whyFaultCannotApply(http, o.of(8080)), undefined);
    assert.equal(whyFaultCannotApply(http, o.of(8081)), undefined);
    // Some clients speak HTTP there: the fault applies to them.
    assert.equal(whyFaultCannotApply(http, o.of(8082)), undefined);
    // Nothing seen yet: nothing to say.
    assert.equal(whyFaultCannotApply(http, o.of(7000)), undefined);
    // gRPC needs HTTP/2.
    assert.equal(whyFaultCannotApply(grpc, o.of(8081)), undefined);
    assert.deepEqual(whyFaultCannotApply(grpc, o.of(8080)), { reason: 'Protocol', message: 'port 8080 carries http1; gRPC faults cannot apply, TCP faults do' });
  });
});
