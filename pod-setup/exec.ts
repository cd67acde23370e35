import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program without a shell (argv is passed verbatim, so nothing in a
 * plan can be interpreted as shell syntax) and collects its output. Resolves
 * with the exit code instead of throwing so callers can inspect the kernel's
 * answer, e.g. to tell "qdisc kind unknown" apart from a real failure.
 */
export function run(argv: readonly string[], input?: string): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error('run: empty argv'));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error(`${file} not found in PATH (is it installed in the image?)`) : err),
    );
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => {
      // The program may exit before reading all input; its exit code reports why.
    });
    child.stdin.end(input ?? '');
  });
}

/** Like `run`, but a non-zero exit is an error carrying the program's stderr. */
export async function runOrThrow(argv: readonly string[], input?: string): Promise<ExecResult> {
  const result = await run(argv, input);
  if (result.code !== 0) {
    throw new Error(`${argv.join(' ')} failed (exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result;
}
