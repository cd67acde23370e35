import assert from 'node:assert/strict';
import { isFromNode, isKubeletRequest, nodeAddresses } from '../../sidecar/capture/probes.ts';

describe('capture: kubelet probes and hooks', () => {
  it('recognises the kubelet\'s probe and lifecycle-hook User-Agents, nothing else', () => {
    assert.ok(isKubeletRequest({ 'user-agent': 'kube-probe/1.36' }));
    assert.ok(isKubeletRequest({ 'user-agent': 'kube-probe/1.36 grpc-go/1.72.0' }), 'gRPC probe');
    assert.ok(isKubeletRequest({ 'user-agent': 'kube-lifecycle/1.36' }));
    for (const ua of [undefined, 'curl/8.5.0', 'Mozilla/5.0 kube-probe/1.36', 'kube-prober/1', 'KUBE-PROBE/1.36']) {
      assert.ok(!isKubeletRequest({ 'user-agent': ua }), String(ua));
    }
    assert.ok(!isKubeletRequest({ 'user-agent': ['kube-probe/1.36', 'x'] }), 'a repeated header is not the kubelet');
  });

  it('takes the node\'s addresses from status.hostIP and status.hostIPs, dual-stack', () => {
    const node = nodeAddresses('10.0.0.5', '10.0.0.5,FD00::5');
    assert.deepEqual([...node].sort(), ['10.0.0.5', 'fd00::5']);
    assert.deepEqual([...nodeAddresses(undefined, undefined)], []);
    assert.deepEqual([...nodeAddresses('', ' , ')], []);
  });

  it('matches connections from the node, IPv4-mapped ones included', () => {
    const node = nodeAddresses('10.0.0.5', 'fd00::5');
    assert.ok(isFromNode('10.0.0.5', node));
    assert.ok(isFromNode('::ffff:10.0.0.5', node));
    assert.ok(isFromNode('FD00::5', node));
    assert.ok(!isFromNode('10.0.0.6', node));
    assert.ok(!isFromNode(undefined, node));
    assert.ok(!isFromNode('10.0.0.5', nodeAddresses(undefined, undefined)));
  });
});
