// faultline-demo: the demo app of the walkthrough and the node tests.
//   node demo/main.ts [--host 0.0.0.0] [--http-port 8080] [--h2c-port 8081]
// Stops on SIGTERM/SIGINT (closing its listeners first).
import { parseArgs } from 'node:util';
import { startDemo } from './server.ts';

const USAGE = `usage: faultline-demo [--host ADDR] [--http-port N] [--h2c-port N]
  --host       address to listen on (default 0.0.0.0)
  --http-port  HTTP/1.1 port (default 8080): GET /, /slow?ms=N, /healthz
  --h2c-port   HTTP/2 cleartext, prior knowledge, port (default 8081): the same routes`;

function port(name: string, raw: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n > 65535) {
    console.error(`faultline-demo: --${name} must be a port number from 0 to 65535, got ${JSON.stringify(raw)}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      host: { type: 'string', default: '0.0.0.0' },
      'http-port': { type: 'string', default: '8080' },
      'h2c-port': { type: 'string', default: '8081' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  console.error(`faultline-demo: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const demo = await startDemo({
  host: args.host,
  httpPort: port('http-port', args['http-port']),
  h2cPort: port('h2c-port', args['h2c-port']),
});
console.log(JSON.stringify({ msg: 'faultline-demo listening', host: args.host, httpPort: demo.httpPort, h2cPort: demo.h2cPort }));

const stop = (signal: NodeJS.Signals): void => {
  console.log(JSON.stringify({ msg: 'faultline-demo stopping', signal }));
  void demo.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
