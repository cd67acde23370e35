// The demo app's two listeners: HTTP/1.1 (the readinessProbe's /healthz and
// ordinary clients) and HTTP/2 cleartext with prior knowledge (h2c, as gRPC
// and `curl --http2-prior-knowledge` speak it). Both answer from route().
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { route } from './routes.ts';

export interface DemoOptions {
  host: string;
  /** HTTP/1.1 port; 0 picks a free one. */
  httpPort: number;
  /** h2c (prior knowledge) port; 0 picks a free one. */
  h2cPort: number;
}

export interface Demo {
  httpPort: number;
  h2cPort: number;
  /** Stops both listeners and ends open connections (including pending /slow waits). */
  close(): Promise<void>;
}

/** What handle() uses of either protocol's request and response objects. */
interface Request {
  method?: string | undefined;
  url?: string | undefined;
}
interface Response {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body: string): unknown;
  once(event: 'close', listener: () => void): unknown;
}

function handle(req: Request, res: Response, protocol: string): void {
  const reply = route({ method: req.method ?? '', url: req.url ?? '', protocol, hostname: hostname() });
  const body = `${JSON.stringify(reply.body)}\n`;
  const send = (): void => {
    res.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? '' : body);
  };
  if (reply.delayMs === 0) return send();
  const timer = setTimeout(send, reply.delayMs);
  // A client that gives up must not leave its timer (and socket) behind.
  res.once('close', () => clearTimeout(timer));
}

function listen(server: http.Server | http2.Http2Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server | http2.Http2Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const h1 = http.createServer((req, res) => handle(req, res, 'HTTP/1.1'));
  const h2 = http2.createServer((req, res) => handle(req, res, 'HTTP/2'));
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  try {
    const httpPort = await listen(h1, options.host, options.httpPort);
    const h2cPort = await listen(h2, options.host, options.h2cPort);
    return {
      httpPort,
      h2cPort,
      async close() {
        const closed = Promise.all([closeServer(h1), closeServer(h2)]);
        h1.closeAllConnections();
        for (const session of sessions) session.destroy();
        await closed;
      },
    };
  } catch (err) {
    h1.close();
    h2.close();
    throw err;
  }
}
