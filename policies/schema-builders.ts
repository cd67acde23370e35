// Builders for OpenAPI v3 structural schemas: the CRDs' schemas (schema.ts)
// and the pod contract's plan schemas (contract/plan-schema.ts) are written
// with these, and checkSchema (schema-check.ts) checks values against them.

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps a structural schema uses here. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  enum?: Array<string | number>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  maxProperties?: number;
  format?: string;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
}

// Every string, list and map is bounded (issue 13 M3): a policy's size is
// what every pod review in its namespace once paid for, and unbounded fields
// let one tenant make admission slow for all. The bounds are generous for
// hand-written policies; the apiserver enforces them before the webhook sees
// the object, and checkSchema enforces the same ones offline.
/** Default maxLength of a string: names, hosts, paths, durations. */
const STRING_MAX = 256;

type Extra = Omit<JSONSchemaProps, 'type' | 'description'>;
export const object = (description: string, properties: Record<string, JSONSchemaProps>, required?: string[]): JSONSchemaProps => ({
  type: 'object', description, properties, ...(required ? { required } : {}),
});
export const string = (description: string, extra: Extra = {}): JSONSchemaProps => ({ type: 'string', description, ...(extra.enum ? {} : { maxLength: STRING_MAX }), ...extra });
export const integer = (description: string, extra: Extra = {}): JSONSchemaProps => ({ type: 'integer', description, ...extra });
export const number = (description: string, extra: Extra = {}): JSONSchemaProps => ({ type: 'number', description, ...extra });
export const boolean = (description: string): JSONSchemaProps => ({ type: 'boolean', description });
export const array = (description: string, items: JSONSchemaProps, maxItems: number, extra: Extra = {}): JSONSchemaProps => ({ type: 'array', description, items, maxItems, ...extra });
export const map = (description: string, values: JSONSchemaProps, maxProperties: number): JSONSchemaProps => ({ type: 'object', description, additionalProperties: values, maxProperties });
export const oneOf = (description: string, values: readonly string[]): JSONSchemaProps => string(description, { enum: [...values] });
export const duration = (description: string): JSONSchemaProps => string(`${description} A Go duration such as "250ms", "1.5s" or "1h30m".`);
export const intOrDuration = (description: string): JSONSchemaProps => ({ description, 'x-kubernetes-int-or-string': true });
export const percent = (description: string): JSONSchemaProps => number(`${description} Percent in (0,100]; default 100.`, { minimum: 0, exclusiveMinimum: true, maximum: 100 });
export const correlation = (): JSONSchemaProps => number('Correlation with the previous packet, percent in [0,100] (netem); default 0.', { minimum: 0, maximum: 100 });
export const port = (description: string): JSONSchemaProps => integer(description, { minimum: 1, maximum: 65535 });
