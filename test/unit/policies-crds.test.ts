import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { renderCrdFiles } from '../../policies/crds.ts';
import type { JSONSchemaProps } from '../../policies/schema-builders.ts';

const dir = new URL('../../manifests/crds/', import.meta.url);

/** Built-in short names (kubectl api-resources) a CRD must not shadow. */
const BUILTIN_SHORT_NAMES = ['cm', 'cs', 'csr', 'deploy', 'ds', 'ep', 'ev', 'hpa', 'ing', 'limits', 'netpol', 'no', 'ns', 'pc', 'pdb', 'po', 'psp', 'pv', 'pvc', 'quota', 'rc', 'rs', 'sa', 'sc', 'sts', 'svc', 'crd', 'crds', 'ds', 'csinode'];

/** Every node of a structural schema has a type, unless it is int-or-string. */
function untypedNodes(schema: JSONSchemaProps, path: string): string[] {
  const own = schema.type === undefined && !schema['x-kubernetes-int-or-string'] ? [path] : [];
  if (schema['x-kubernetes-int-or-string'] && schema.type !== undefined) own.push(`${path} (int-or-string must not set type)`);
  if (schema.properties && schema.additionalProperties) own.push(`${path} (properties and additionalProperties together)`);
  return [
    ...own,
    ...Object.entries(schema.properties ?? {}).flatMap(([k, s]) => untypedNodes(s, `${path}.${k}`)),
    ...(schema.items ? untypedNodes(schema.items, `${path}[]`) : []),
    ...(schema.additionalProperties ? untypedNodes(schema.additionalProperties, `${path}{}`) : []),
  ];
}

function described(schema: JSONSchemaProps, path: string): string[] {
  const missing = schema.description || path === '.metadata' ? [] : [path];
  return [
    ...missing,
    ...Object.entries(schema.properties ?? {}).flatMap(([k, s]) => described(s, `${path}.${k}`)),
    ...(schema.items?.properties ? described(schema.items, `${path}[]`) : []),
  ];
}

describe('policies: CRDs', () => {
  const files = renderCrdFiles();

  for (const [name, text] of files) {
    it(`manifests/crds/${name} is up to date (npm run crds:generate)`, () => {
      assert.equal(readFileSync(new URL(name, dir), 'utf8'), text, `${name} is stale: run npm run crds:generate`);
    });
  }

  const crds = [...files.entries()].filter(([n]) => n !== 'kustomization.yaml').map(([, t]) => parse(t) as {
    spec: { scope: string; names: { shortNames: string[]; categories: string[] }; versions: Array<{ schema: { openAPIV3Schema: JSONSchemaProps }; subresources?: object; additionalPrinterColumns: Array<{ name: string; jsonPath: string }> }> };
  });

  it('have structural schemas: every node typed, int-or-string untyped', () => {
    for (const crd of crds) assert.deepEqual(untypedNodes(crd.spec.versions[0]!.schema.openAPIV3Schema, ''), []);
  });

  it('describe every field, for kubectl explain', () => {
    for (const crd of crds) assert.deepEqual(described(crd.spec.versions[0]!.schema.openAPIV3Schema, ''), []);
  });

  it('declare scope, status subresource, printer columns, categories and non-clashing short names', () => {
    const [policy, tenant] = crds as [typeof crds[0], typeof crds[0]];
    assert.equal(policy.spec.scope, 'Namespaced');
    assert.equal(tenant.spec.scope, 'Cluster');
    assert.ok(policy.spec.versions[0]!.subresources);
    assert.deepEqual(policy.spec.versions[0]!.additionalPrinterColumns.map((c) => `${c.name}=${c.jsonPath}`), [
      'Tenant=.status.tenant', 'Faults=.status.faults', 'Targeted=.status.targetedPods', 'Applied=.status.appliedPods', 'Expires=.status.expiresAt', 'Age=.metadata.creationTimestamp',
    ]);
    // Only the namespaced kind: tenants running `kubectl get chaos` cannot read ChaosTenants.
    assert.deepEqual(policy.spec.names.categories, ['chaos']);
    assert.equal(tenant.spec.names.categories, undefined);
    for (const crd of crds) {
      for (const short of crd.spec.names.shortNames) assert.ok(!BUILTIN_SHORT_NAMES.includes(short), short);
    }
  });
});
