// Issue 13 M3: no policy can grow without limit. Every string, list and map
// of the CRD schemas is bounded, and an oversized policy is refused with the
// apiserver's wording before anything else looks at it.
import assert from 'node:assert/strict';
import { chaosPolicySchema, chaosTenantSchema, type JSONSchemaProps } from '../../policies/schema.ts';
import { validatePolicy } from '../../policies/validate.ts';
import { policy } from '../support/policies-fixtures.ts';

/** Paths of string/array/map nodes without a size bound (enums are bounded by their values). */
function unbounded(schema: JSONSchemaProps, path: string): string[] {
  const own: string[] = [];
  if (schema.type === 'string' && schema.maxLength === undefined && schema.enum === undefined && schema.format !== 'date-time') own.push(path);
  if (schema.type === 'array' && schema.maxItems === undefined) own.push(path);
  if (schema.additionalProperties && schema.maxProperties === undefined) own.push(path);
  return [
    ...own,
    ...Object.entries(schema.properties ?? {}).flatMap(([k, s]) => unbounded(s, `${path}.${k}`)),
    ...(schema.items ? unbounded(schema.items, `${path}[]`) : []),
    ...(schema.additionalProperties ? unbounded(schema.additionalProperties, `${path}{}`) : []),
  ];
}

describe('policies: bounded schemas (issue 13 M3)', () => {
  for (const [name, schema] of [['ChaosPolicy', chaosPolicySchema], ['ChaosTenant', chaosTenantSchema]] as const) {
    it(`bounds every string, list and map of ${name}`, () => {
      assert.deepEqual(unbounded(schema, ''), []);
    });
  }

  it('refuses the 640 KB policy of the report: too many rules, too long a body', () => {
    const rule = { match: { path: { prefix: '/' } }, abort: { status: 503, body: 'x'.repeat(5000) } };
    const huge = policy({ http: Array.from({ length: 128 }, () => rule) });
    assert.ok(JSON.stringify(huge).length > 640_000);
    assert.deepEqual(validatePolicy(huge), [{ path: 'spec.http', message: 'Too many: 128: must have at most 32 items' }]);
    const long = validatePolicy(policy({ http: [rule] }));
    assert.deepEqual(long, [{ path: 'spec.http[0].abort.body', message: 'Too long: may not be more than 4096 bytes' }]);
    const labels = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v']));
    assert.deepEqual(validatePolicy(policy({ selector: { matchLabels: labels }, http: [{ delay: { fixed: '1s' } }] })), [
      { path: 'spec.selector.matchLabels', message: 'Too many: 40: must have at most 32 items' },
    ]);
  });
});
