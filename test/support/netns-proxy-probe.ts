// Preloaded into a test's faultline-proxy (node --expose-gc --import this):
// on SIGUSR2 it collects garbage and logs the heap and the pending timers as
// one JSON line, so a test can see what the proxy holds after a load, from
// outside its process. The proxy itself never handles SIGUSR2.
const { gc } = globalThis as { gc?: () => void };

process.on('SIGUSR2', () => {
  gc?.();
  gc?.();
  const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  process.stdout.write(`${JSON.stringify({ msg: 'test probe', gc: gc !== undefined, heapUsed: process.memoryUsage().heapUsed, timers })}\n`);
});

export {};
