// The three small HTTP endpoints of the proxy, each on its own port because
// each has its own audience: admin (127.0.0.1 only: the plan and counters are
// for someone already inside the pod), Prometheus metrics (scraped from outside)
// and health (the kubelet's startup probe of the native sidecar, and the
// read-only datapath report the reconciler reads: GET /status).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PROXY_STATUS_PATH } from '../contract/pod-layout.ts';

export interface AdminView {
  plan(): unknown;
  faults(): unknown;
  stats(): unknown;
  ready(): { ready: boolean; reason?: string };
  /** What the datapath applies per policy (contract/applied.ts). */
  report(): unknown;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function notFound(res: http.ServerResponse, known: string): void {
  json(res, 404, { error: `not found; try ${known}` });
}

export function adminHandler(view: AdminView): http.RequestListener {
  return (req, res) => {
    if (req.method !== 'GET') return json(res, 405, { error: 'GET only' });
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/plan') return json(res, 200, view.plan());
    if (path === '/faults') return json(res, 200, view.faults());
    if (path === '/stats') return json(res, 200, view.stats());
    notFound(res, 'GET /plan, /faults, /stats');
  };
}

export function metricsHandler(registry: Registry): http.RequestListener {
  return (req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return notFound(res, 'GET /metrics');
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: Error) => json(res, 500, { error: err.message }),
    );
  };
}

export function healthHandler(view: AdminView): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === PROXY_STATUS_PATH) return req.method === 'GET' ? json(res, 200, view.report()) : json(res, 405, { error: 'GET only' });
    if (path !== '/healthz/ready') return notFound(res, 'GET /healthz/ready, /status');
    const r = view.ready();
    json(res, r.ready ? 200 : 503, r);
  };
}

/** Listens and resolves with the bound port (port 0 picks a free one). */
export function listen(server: http.Server | import('node:net').Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
