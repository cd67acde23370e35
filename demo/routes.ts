// What the demo app answers, apart from any I/O: both servers (HTTP/1.1 and
// h2c) turn a request line into the same Reply, so a fault seen on one port
// can be compared with the other.

/** The longest /slow may be asked to wait: bounded, so a request can't pin a socket for ever. */
export const MAX_SLOW_MS = 30_000;
export const DEFAULT_SLOW_MS = 1_000;

export interface Reply {
  status: number;
  /** JSON-serialisable body; sent as application/json. */
  body: Record<string, unknown>;
  /** How long to wait before answering (only /slow waits). */
  delayMs: number;
}

export interface RequestFacts {
  method: string;
  /** The request target as sent (path and query). */
  url: string;
  /** 'HTTP/1.1' or 'HTTP/2', echoed so clients can see which server answered. */
  protocol: string;
  hostname: string;
}

function reply(status: number, body: Record<string, unknown>, delayMs = 0): Reply {
  return { status, body, delayMs };
}

/** Routes: GET /healthz, GET / and GET /slow?ms=N (0..MAX_SLOW_MS); HEAD like GET. */
export function route(req: RequestFacts): Reply {
  let url: URL;
  try {
    url = new URL(req.url, 'http://demo.invalid');
  } catch {
    return reply(400, { error: `malformed request target: ${JSON.stringify(req.url)}` });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return reply(405, { error: `method ${req.method} not allowed; the demo serves GET and HEAD` });
  const served = { service: 'faultline-demo', hostname: req.hostname, protocol: req.protocol, path: url.pathname };
  switch (url.pathname) {
    case '/healthz':
      return reply(200, { status: 'ok' });
    case '/':
      return reply(200, served);
    case '/slow': {
      const raw = url.searchParams.get('ms');
      const ms = raw === null ? DEFAULT_SLOW_MS : Number(raw);
      if (!/^\d+$/.test(raw ?? '0') || !Number.isSafeInteger(ms) || ms > MAX_SLOW_MS)
        return reply(400, { error: `ms must be an integer from 0 to ${MAX_SLOW_MS}, got ${JSON.stringify(raw)}` });
      return reply(200, { ...served, sleptMs: ms }, ms);
    }
    default:
      return reply(404, { error: `no route ${url.pathname}; try /, /slow?ms=N or /healthz` });
  }
}
