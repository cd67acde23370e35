// For tests that run a cluster in a child process (to SIGKILL it): the child
// prints one JSON line once it is up.
import type { ChildProcess } from 'node:child_process';

/** The child's first stdout line, parsed; rejects if the child exits first. */
export function firstJsonLine<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as T);
    });
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before ${what}`)));
  });
}
