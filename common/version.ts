import { readFileSync } from 'node:fs';

/** Faultline's version, from package.json (the single source). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
