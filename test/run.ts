// `npm test`: type-check, then every suite in order (fast to slow). A failing
// suite does not stop the others, so one CI run shows every failure; the last
// line totals them as "N passed, N failed, N skipped" for whoever reads the log.
import { spawn } from 'node:child_process';

const SUITES = ['unit', 'images', 'datapath', 'netns', 'e2e'] as const;

interface Outcome {
  name: string;
  code: number;
  passed: number;
  failed: number;
  skipped: number;
}

/** Runs `npm run <script>`, echoing its output and reading mocha's closing counts. */
function runScript(script: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let tail = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-4096);
    });
    const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}`, 'm').exec(tail)?.[1] ?? 0);
    child.on('close', (code, signal) =>
      resolve({ name: script, code: code ?? (signal ? 128 : 1), passed: count('passing'), failed: count('failing'), skipped: count('pending') }),
    );
  });
}

const typecheck = await runScript('typecheck');
if (typecheck.code !== 0) {
  console.error('\nnpm test: type-check failed; not running the suites');
  process.exit(1);
}

const outcomes: Outcome[] = [];
for (const suite of SUITES) {
  console.log(`\n==> test:${suite}`);
  outcomes.push(await runScript(`test:${suite}`));
}

console.log(`\n${'suite'.padEnd(14)} passed  failed  skipped  exit`);
for (const o of outcomes)
  console.log(`${o.name.padEnd(14)} ${String(o.passed).padStart(6)}  ${String(o.failed).padStart(6)}  ${String(o.skipped).padStart(7)}  ${o.code}`);
const sum = (k: 'passed' | 'failed' | 'skipped') => outcomes.reduce((n, o) => n + o[k], 0);
// A suite that crashed before mocha's summary counts as one failure, so the total never reads clean.
const crashed = outcomes.filter((o) => o.code !== 0 && o.failed === 0).length;
console.log(`${sum('passed')} passed, ${sum('failed') + crashed} failed, ${sum('skipped')} skipped`);
process.exit(outcomes.some((o) => o.code !== 0) ? 1 : 0);
