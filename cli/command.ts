import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type ParsedValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

/** Typed accessors: parseArgs values are loosely typed by nature. */
export function str(values: ParsedValues, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}
export function strs(values: ParsedValues, key: string): string[] {
  const v = values[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}
export function flag(values: ParsedValues, key: string): boolean {
  return values[key] === true;
}
export function int(values: ParsedValues, key: string, fallback: number): number {
  const v = str(values, key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${key} must be an integer, got '${v}'`);
  return n;
}

/** One `faultline <name>` subcommand (named in cli/commands/index.ts). `run` resolves to the process exit code. */
export interface Command {
  /** Full help text, printed for `faultline <name> --help`. */
  usage: string;
  options: Options;
  allowPositionals?: boolean;
  run(values: ParsedValues, positionals: string[]): Promise<number>;
}

/** Thrown for bad command-line input: printed without a stack, exit code 2. */
export class UsageError extends Error {}

/** Parses `argv` for `command` and runs it; `label` prefixes usage errors ("faultline sidecar"). */
export async function runCommand(label: string, command: Command, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: command.options,
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
    return await command.run(values, positionals);
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${label}: ${(err as Error).message}\n\n${command.usage}`);
      return 2;
    }
    throw err;
  }
}

/** Runs `command` as the whole process: its result is the exit code, a throw prints the stack and exits 1. */
export function runAsProcess(label: string, run: () => Promise<number>): void {
  run().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`${label}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exitCode = 1;
    },
  );
}
