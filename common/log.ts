import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout (one object per line), the format every log
 * pipeline on Kubernetes expects. FAULTLINE_LOG_LEVEL=silent mutes tests.
 */
export function createLogger(component: string, level = process.env.FAULTLINE_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
