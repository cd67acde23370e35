import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { formatFieldErrors } from '../../policies/field-error.ts';
import type { ChaosTenant } from '../../policies/types.ts';
import { validateTenant } from '../../policies/validate.ts';
import { admissionVerdict } from '../../policies/verdict.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED, WEBHOOK_NAMES } from '../../policies/wellknown.ts';
import { str, strs, UsageError, type Command } from '../command.ts';

const usage = `Usage: faultline check POLICY.yaml --tenant TENANT.yaml [options]

Prints the admission verdict the chaospolicies webhook would give each
ChaosPolicy in POLICY.yaml, offline, in the webhook's own words.

Options:
  --tenant FILE           ChaosTenant(s) to check against (repeatable; the
                          namespace's owner among them is used)
  --namespace NS          namespace the policy is applied in (default: the
                          policy's metadata.namespace, else the only tenant's
                          first namespace)
  --namespace-label K=V   label of that namespace, for tenants that select
                          namespaces by label (repeatable); the namespace is
                          assumed opted in (${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED})
  --user NAME             author, as the apiserver names them (e.g. jane,
                          system:serviceaccount:shop:ci); without it the
                          tenant's subjects are not checked
  --group NAME            author's group (repeatable)
  -h, --help              show this help

Exit status: 0 every policy allowed, 1 a policy denied, 2 usage or parse error.`;

/** A problem with the input files: reported without the usage text, exit 2. */
class InputError extends Error {}

function readDocuments(file: string): Array<{ index: number; value: unknown }> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const docs = parseAllDocuments(text);
  const out: Array<{ index: number; value: unknown }> = [];
  docs.forEach((doc, i) => {
    const [error] = doc.errors;
    if (error) throw new InputError(`cannot parse ${file} (document ${i + 1}): ${error.message}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push({ index: i + 1, value });
  });
  return out;
}

function kindOf(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? (value as { kind?: unknown }).kind : undefined;
}

function readTenants(files: string[]): ChaosTenant[] {
  return files.flatMap((file) => readDocuments(file).map(({ index, value }) => {
    if (kindOf(value) !== 'ChaosTenant') throw new InputError(`${file} (document ${index}) is not a ChaosTenant`);
    const errors = validateTenant(value);
    if (errors.length > 0) throw new InputError(`${file} (document ${index}): ChaosTenant is invalid: ${formatFieldErrors(errors)}`);
    return value as ChaosTenant;
  }));
}

function parseLabels(pairs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--namespace-label must be KEY=VALUE, got '${pair}'`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

async function run(values: Parameters<Command['run']>[0], positionals: string[]): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('expected exactly one POLICY.yaml');
  const tenantFiles = strs(values, 'tenant');
  if (tenantFiles.length === 0) throw new UsageError('--tenant is required');
  const labels = parseLabels(strs(values, 'namespace-label'));
  const username = str(values, 'user');
  const groups = strs(values, 'group');
  if (username === undefined && groups.length > 0) throw new UsageError('--group needs --user');
  const [policyFile] = positionals as [string];
  try {
    const tenants = readTenants(tenantFiles);
    const policies = readDocuments(policyFile);
    if (policies.length === 0) throw new InputError(`${policyFile} holds no documents`);
    let denied = false;
    for (const { index, value } of policies) {
      if (kindOf(value) !== 'ChaosPolicy') throw new InputError(`${policyFile} (document ${index}) is not a ChaosPolicy`);
      const metadata = (value as { metadata?: { name?: unknown; namespace?: unknown } }).metadata;
      const [onlyTenant] = tenants;
      const namespace = str(values, 'namespace')
        ?? (typeof metadata?.namespace === 'string' ? metadata.namespace : undefined)
        ?? (tenants.length === 1 ? onlyTenant?.spec.namespaces?.[0] : undefined)
        ?? 'default';
      const verdict = admissionVerdict({
        policy: value,
        namespace: { name: namespace, labels: { ...labels, [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } },
        tenants,
        user: username === undefined ? undefined : { username, groups },
      });
      const name = typeof metadata?.name === 'string' ? metadata.name : `document ${index}`;
      for (const warning of verdict.warnings) console.error(`Warning: ${warning}`);
      if (verdict.allowed) {
        console.log(`chaospolicy "${name}" in namespace "${namespace}": allowed by tenant "${verdict.tenant}" (${verdict.faults})`);
      } else {
        denied = true;
        console.log(`chaospolicy "${name}" in namespace "${namespace}": admission webhook "${WEBHOOK_NAMES.validatePolicies}" denied the request: ${verdict.message}`);
      }
    }
    if (username === undefined && tenants.some((t) => (t.spec.subjects?.length ?? 0) > 0)) console.error('Note: the tenant\'s subjects were not checked; pass --user (and --group) to check the author too.');
    return denied ? 1 : 0;
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    console.error(`faultline check: ${err.message}`);
    return 2;
  }
}

export const checkCommand: Command = {
  usage,
  options: {
    tenant: { type: 'string', multiple: true },
    namespace: { type: 'string' },
    'namespace-label': { type: 'string', multiple: true },
    user: { type: 'string' },
    group: { type: 'string', multiple: true },
  },
  allowPositionals: true,
  run,
};
