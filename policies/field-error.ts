// Field errors in the apiserver's style: a kubectl-style path
// ("spec.http[0].delay.fixed") and a reason a human can act on.

export interface FieldError {
  path: string;
  message: string;
}

export function child(path: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${key}]`;
}

export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

/** JSON rendering for "Invalid value: …" that stays short whatever it is given. */
export function show(value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export const required = (path: string): FieldError => ({ path, message: 'Required value' });
export const invalid = (path: string, value: unknown, why: string): FieldError => ({ path, message: `Invalid value: ${show(value)}: ${why}` });
export const unsupported = (path: string, value: unknown, supported: readonly (string | number)[]): FieldError => ({
  path,
  message: `Unsupported value: ${show(value)}: supported values: ${supported.map((v) => show(v)).join(', ')}`,
});
export const forbidden = (path: string, why: string): FieldError => ({ path, message: `Forbidden: ${why}` });

/** "spec.duration: Required value; spec.mode.value: …", as kubectl prints field errors. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join('; ');
}
