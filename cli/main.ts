import { VERSION } from '../common/version.ts';
import { runAsProcess, runCommand } from './command.ts';
import { commands } from './commands/index.ts';

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `faultline ${VERSION}: chaos engineering for Kubernetes through admission control`,
    '',
    'Usage: faultline <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `faultline <command> --help` for a command\'s options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    console.log(VERSION);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`faultline: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  return runCommand(`faultline ${name}`, await entry.load(), rest);
}

runAsProcess('faultline', () => main(process.argv.slice(2)));
