// The "application" of a simulated pod: an HTTP server per port given on the
// command line ("h2:<port>" serves h2c, HTTP/2 prior knowledge). Answers
// "app <port> <url>" so a test can tell which port a request really reached,
// /peer with the address the connection came from (who the app sees), and
// /time with the process's idea of now (faketime).
import http from 'node:http';
import http2 from 'node:http2';

const answer = (port: number, url: string | undefined, peer: string | undefined): string =>
  url === '/time' ? String(Date.now()) : url === '/peer' ? `app ${port} from ${peer}` : `app ${port} ${url}`;

for (const arg of process.argv.slice(2)) {
  const h2 = arg.startsWith('h2:');
  const port = Number(h2 ? arg.slice(3) : arg);
  if (h2) {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(answer(port, headers[':path'], stream.session?.socket.remoteAddress));
    });
    server.listen(port, '0.0.0.0');
    continue;
  }
  http
    .createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(answer(port, req.url, req.socket.remoteAddress));
    })
    .listen(port, '0.0.0.0');
}
