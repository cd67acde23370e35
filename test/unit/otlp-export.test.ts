// The optional OTLP export of chaos events (webhook/otlp-export.ts) against a
// small local OTLP/HTTP receiver: off without the standard variables; with
// OTEL_EXPORTER_OTLP_ENDPOINT set, every event arrives at /v1/logs as a log
// record carrying chaos_id and the other fields as attributes.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../common/log.ts';
import { otlpConfigured, startChaosExport } from '../../webhook/otlp-export.ts';

interface OtlpLogs {
  resourceLogs: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeLogs: Array<{ logRecords: Array<{ eventName?: string; severityText?: string; body?: { stringValue?: string }; attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }> }> }>;
  }>;
}

describe('chaos events over OTLP/HTTP (optional)', () => {
  const saved = { ...process.env };
  let receiver: http.Server;
  const received: Array<{ path: string; contentType: string; body: OtlpLogs }> = [];

  before(async () => {
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpLogs });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await new Promise((r) => receiver.close(r));
  });

  it('is off unless an OTLP endpoint is configured', async () => {
    assert.equal(otlpConfigured({}), false);
    assert.equal(otlpConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:4318', OTEL_SDK_DISABLED: 'true' }), false);
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT;
    assert.equal(await startChaosExport(createLogger('test', 'silent')), undefined);
  });

  it('sends each chaos event as a log record with its fields as attributes', async () => {
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    const exporter = await startChaosExport(createLogger('test', 'silent'));
    assert.ok(exporter);
    exporter.sink({ chaos_id: 'uid-1/3', policy: 'shop/p', target: 'web-1 inbound :8080', fault: 'http.delay', status: 'started', duration_ms: 0 });
    exporter.sink({ chaos_id: 'uid-1/3', policy: 'shop/p', target: 'web-1 inbound :9999', fault: 'tcp.latency', status: 'not_applied', duration_ms: 0, reason: 'PortNotServed' });
    await exporter.shutdown();
    assert.ok(received.length >= 1, 'the receiver got an export');
    assert.equal(received[0]!.path, '/v1/logs');
    assert.match(received[0]!.contentType, /application\/json/);
    const records = received.flatMap((r) => r.body.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((s) => s.logRecords)));
    const attrs = (i: number) => Object.fromEntries(records[i]!.attributes.map((a) => [a.key, a.value.stringValue ?? a.value.intValue]));
    assert.equal(records.length, 2);
    assert.deepEqual([attrs(0).chaos_id, attrs(0).status, attrs(0).fault], ['uid-1/3', 'started', 'http.delay']);
    assert.deepEqual([attrs(1).reason, records[1]!.severityText, records[1]!.eventName], ['PortNotServed', 'WARN', 'faultline.chaos']);
    const service = received[0]!.body.resourceLogs[0]!.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
    assert.equal(service, 'faultline-webhook');
  });
});
