// The dashboard and the alert examples in manifests/observability/ query only
// metrics the code really exports (the webhook's and the proxy's registries),
// with label names those metrics really have.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { Metrics } from '../../sidecar/metrics.ts';
import { createMetrics } from '../../webhook/metrics.ts';

const DIR = new URL('../../manifests/observability/', import.meta.url);

async function exported(): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const registry of [new Metrics().registry, createMetrics().registry]) {
    const types = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
    for (const m of registry.getMetricsAsArray() as unknown as Array<{ name: string; labelNames?: string[] }>) {
      const labels = new Set(m.labelNames ?? []);
      const names = types.get(m.name) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
      for (const n of names) out.set(n, labels);
    }
  }
  return out;
}

/** faultline_* metric names in a PromQL expression, with the label names used in its matchers and by()/sum by. */
function references(expr: string): Array<{ metric: string; labels: string[] }> {
  const refs: Array<{ metric: string; labels: string[] }> = [];
  for (const m of expr.matchAll(/(faultline_[a-z_]+)(\{([^}]*)\})?/g)) {
    const labels = [...(m[3] ?? '').matchAll(/([a-z_]+)\s*(=~|!=|!~|=)/g)].map((x) => x[1]!);
    refs.push({ metric: m[1]!, labels });
  }
  return refs;
}

describe('observability examples (manifests/observability)', () => {
  it('the Grafana dashboard covers the issue\'s panels and queries only exported metrics', async () => {
    const dashboard = JSON.parse(await readFile(new URL('grafana-dashboard.json', DIR), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const metrics = await exported();
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 9);
    for (const expr of exprs) {
      const refs = references(expr);
      assert.ok(refs.length > 0, `no Faultline metric in ${expr}`);
      for (const { metric, labels } of refs) {
        assert.ok(metrics.has(metric), `${metric} (in ${expr}) is not exported; exported: ${[...metrics.keys()].filter((n) => n.startsWith('faultline_')).join(', ')}`);
        for (const l of labels) if (l !== 'le') assert.ok(metrics.get(metric)!.has(l), `${metric} has no label ${l}`);
      }
    }
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['faults active', 'aborts', 'injection skips', 'admission latency', 'denials', 'delay added by the proxy']) assert.ok(titles.includes(topic), `no panel for ${topic}: ${titles}`);
  });

  it('the PrometheusRule examples are valid rules over exported metrics', async () => {
    const metrics = await exported();
    const [doc] = parseAllDocuments(await readFile(new URL('prometheusrule.yaml', DIR), 'utf8')).map((d) => d.toJS() as { kind: string; spec: { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> } });
    assert.equal(doc!.kind, 'PrometheusRule');
    const rules = doc!.spec.groups.flatMap((g) => g.rules);
    assert.ok(rules.some((r) => r.alert === 'FaultlineExperimentAborted'));
    for (const r of rules) for (const { metric, labels } of references(r.expr)) {
      assert.ok(metrics.has(metric), `${r.alert}: ${metric} is not exported`);
      for (const l of labels) if (l !== 'le') assert.ok(metrics.get(metric)!.has(l), `${r.alert}: ${metric} has no label ${l}`);
    }
  });
});
