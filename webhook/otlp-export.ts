// Optional OpenTelemetry export of the chaos event log (common/chaos-event.ts)
// from the webhook and its reconciler, as OTLP log records over HTTP with the
// official SDK. On only when the standard variables say where to send:
// OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT (the SDK
// also reads OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, OTEL_SERVICE_NAME, …).
// Never in the proxy: the SDK would cost every pod memory for what its JSON
// log lines already carry to any log pipeline.
import type { Logger } from '../common/log.ts';
import type { ChaosEvent } from '../common/chaos-event.ts';

export interface ChaosExport {
  sink(e: ChaosEvent): void;
  /** Flushes what is batched, then stops. */
  shutdown(): Promise<void>;
}

export function otlpConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT) && env.OTEL_SDK_DISABLED !== 'true';
}

/** Undefined when OTLP is not configured; the SDK is loaded only then. */
export async function startChaosExport(log: Logger, service = 'faultline-webhook'): Promise<ChaosExport | undefined> {
  if (!otlpConfigured()) return undefined;
  const [{ LoggerProvider, BatchLogRecordProcessor }, { OTLPLogExporter }, { resourceFromAttributes }, { SeverityNumber }] = await Promise.all([
    import('@opentelemetry/sdk-logs'),
    import('@opentelemetry/exporter-logs-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/api-logs'),
  ]);
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME ?? service }),
    processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter() })],
  });
  const otel = provider.getLogger('faultline.chaos');
  log.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'exporting chaos events over OTLP/HTTP');
  return {
    sink(e) {
      const attributes: Record<string, string | number | boolean> = {};
      for (const [k, v] of Object.entries(e)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') attributes[k] = v;
        else if (v !== undefined) attributes[k] = JSON.stringify(v);
      }
      otel.emit({
        eventName: 'faultline.chaos',
        severityNumber: e.status === 'not_applied' ? SeverityNumber.WARN : SeverityNumber.INFO,
        severityText: e.status === 'not_applied' ? 'WARN' : 'INFO',
        body: `fault ${e.status}: ${e.fault} on ${e.target} (${e.policy})`,
        attributes,
      });
    },
    shutdown: () => provider.shutdown().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'OTLP export: flush at shutdown failed')),
  };
}
