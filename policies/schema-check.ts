// Checks a value against a structural schema the way the apiserver would,
// with its wording, and lists the fields the apiserver would silently prune.
// Everything downstream may then trust the shapes; semantics are validate.ts's.

import { child, index, invalid, required, unsupported, type FieldError } from './field-error.ts';
import type { JSONSchemaProps } from './schema-builders.ts';

export interface SchemaCheck {
  errors: FieldError[];
  /** Paths of fields the schema does not know (the apiserver drops them). */
  unknownFields: string[];
}

/**
 * Like the apiserver, treats null as "absent": YAML writes an emptied optional
 * field as null, and the apiserver drops those before validation.
 */
export function pruneNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(pruneNulls);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    // defineProperty, not assignment: a "__proto__" key must stay a plain key.
    if (v !== null) Object.defineProperty(out, k, { value: pruneNulls(v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A value checkSchema has passed: its shape is the schema's, so fields are read without casts. */
export type Checked = Record<string, any>;

/**
 * A document as its decoders read it: null as absent, the structure, then, on
 * well-shaped input only, the semantic rules. Each decoder throws its own
 * error from the field errors.
 */
export function checkDocument(schema: JSONSchemaProps, value: unknown, path: string, rules: (v: Checked) => FieldError[]): { value: Checked; errors: FieldError[] } {
  const pruned = pruneNulls(value) as Checked;
  const { errors } = checkSchema(schema, pruned, path);
  if (errors.length === 0) errors.push(...rules(pruned));
  return { value: pruned, errors };
}

/** Callers prune nulls first (pruneNulls); a null left here is a type error. */
export function checkSchema(schema: JSONSchemaProps, value: unknown, path: string): SchemaCheck {
  const result: SchemaCheck = { errors: [], unknownFields: [] };
  walk(schema, value, path, result);
  return result;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function walk(schema: JSONSchemaProps, value: unknown, path: string, out: SchemaCheck): void {
  const actual = typeOf(value);
  if (schema['x-kubernetes-int-or-string']) {
    if (actual !== 'integer' && actual !== 'string') out.errors.push(invalid(path, value, 'must be an integer or a string'));
    return;
  }
  const expected = schema.type;
  if (expected === undefined) return;
  const matches = actual === expected || (expected === 'number' && actual === 'integer');
  if (!matches) {
    out.errors.push(invalid(path, value, `must be of type ${expected}`));
    return;
  }
  if (schema.enum && !schema.enum.includes(value as string | number)) {
    out.errors.push(unsupported(path, value, schema.enum));
    return;
  }
  switch (expected) {
    case 'object':
      walkObject(schema, value as Record<string, unknown>, path, out);
      return;
    case 'array': {
      const items = value as unknown[];
      if (schema.minItems !== undefined && items.length < schema.minItems) {
        out.errors.push(invalid(path, items, `must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`));
      }
      // Like the apiserver: an over-long list is reported once and not walked.
      if (schema.maxItems !== undefined && items.length > schema.maxItems) {
        out.errors.push(tooMany(path, items.length, schema.maxItems));
        return;
      }
      if (schema.items) items.forEach((item, i) => walk(schema.items!, item, index(path, i), out));
      return;
    }
    case 'string': {
      const length = [...(value as string)].length;
      if (schema.minLength !== undefined && length < schema.minLength) out.errors.push(invalid(path, value, 'must not be empty'));
      if (schema.maxLength !== undefined && length > schema.maxLength) out.errors.push({ path, message: `Too long: may not be more than ${schema.maxLength} bytes` });
      return;
    }
    case 'integer':
    case 'number':
      checkRange(schema, value as number, path, out);
      return;
    default:
      return;
  }
}

function tooMany(path: string, actual: number, max: number): FieldError {
  return { path, message: `Too many: ${actual}: must have at most ${max} items` };
}

function walkObject(schema: JSONSchemaProps, value: Record<string, unknown>, path: string, out: SchemaCheck): void {
  const count = Object.keys(value).length;
  if (schema.maxProperties !== undefined && count > schema.maxProperties) {
    out.errors.push(tooMany(path, count, schema.maxProperties));
    return;
  }
  for (const key of schema.required ?? []) {
    if (value[key] === undefined || value[key] === null) out.errors.push(required(child(path, key)));
  }
  for (const [key, v] of Object.entries(value)) {
    const sub = schema.properties?.[key] ?? schema.additionalProperties;
    if (sub) {
      walk(sub, v, child(path, key), out);
    } else if (schema.properties) {
      out.unknownFields.push(child(path, key));
    }
  }
}

function checkRange(schema: JSONSchemaProps, n: number, path: string, out: SchemaCheck): void {
  if (!Number.isFinite(n)) {
    out.errors.push(invalid(path, n, 'must be a finite number'));
  } else if (schema.minimum !== undefined && (schema.exclusiveMinimum ? n <= schema.minimum : n < schema.minimum)) {
    out.errors.push(invalid(path, n, `must be ${schema.exclusiveMinimum ? 'greater than' : 'at least'} ${schema.minimum}${schema.maximum !== undefined ? ` and at most ${schema.maximum}` : ''}`));
  } else if (schema.maximum !== undefined && n > schema.maximum) {
    out.errors.push(invalid(path, n, `must be at most ${schema.maximum}`));
  }
}
