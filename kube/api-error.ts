// API errors as people read them: what we were doing, the HTTP status and the
// server's own message (a 403 names the missing permission), not the client's
// internals. One formatter for the webhook's client-node errors and the lean
// client's KubeStatusError (client.ts); duck-typed, so the proxy, which never
// loads @kubernetes/client-node, can use it too.

interface HttpishError extends Error {
  code?: unknown;
  statusCode?: unknown;
  body?: unknown;
}

/** client-node's ApiException: an HTTP status and the response body. */
function isApiException(err: unknown): err is HttpishError & { code: number } {
  return err instanceof Error && typeof (err as HttpishError).code === 'number' && 'body' in err;
}

/** "<doing>: HTTP 403: <the server's message>", keeping the original as the cause. */
export function describeApiError(err: unknown, doing: string): Error {
  if (isApiException(err)) {
    const body = typeof err.body === 'string' ? statusMessage(err.body) : (err.body as { message?: string } | undefined)?.message;
    return new Error(`${doing}: HTTP ${err.code}${body ? `: ${body}` : ''}`, { cause: err });
  }
  return new Error(`${doing}: ${(err as Error).message}`, { cause: err });
}

/** One line for a log field: the message, and the HTTP status when there is one. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as HttpishError).code ?? (err as HttpishError).statusCode;
    return code !== undefined ? `${err.message} (HTTP ${String(code)})` : err.message;
  }
  return String(err);
}

/** The message of a Status body, or the body as is when it is not JSON. */
function statusMessage(body: string): string {
  try {
    return (JSON.parse(body) as { message?: string }).message ?? body;
  } catch {
    return body;
  }
}
