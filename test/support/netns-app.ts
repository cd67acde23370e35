// The "application" of a simulated pod: an HTTP server per port given on the
// command line. Answers "app <port> <url>" so a test can tell which port a
// request really reached, and /time with the process's idea of now (faketime).
import http from 'node:http';

for (const arg of process.argv.slice(2)) {
  const port = Number(arg);
  http
    .createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(req.url === '/time' ? String(Date.now()) : `app ${port} ${req.url}`);
    })
    .listen(port, '0.0.0.0');
}
