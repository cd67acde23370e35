// API errors as people read them: what we were doing, the HTTP status and the
// server's own message (a 403 names the missing permission), not the client's internals.
import { ApiException } from '@kubernetes/client-node';

export function describeApiError(err: unknown, doing: string): Error {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? statusMessage(err.body) : (err.body as { message?: string } | undefined)?.message;
    return new Error(`${doing}: HTTP ${err.code}${body ? `: ${body}` : ''}`, { cause: err });
  }
  return new Error(`${doing}: ${(err as Error).message}`, { cause: err });
}

/** The message of a Status body, or the body as is when it is not JSON. */
function statusMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body;
  }
}
