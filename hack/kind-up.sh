#!/usr/bin/env bash
# A local Faultline on kind (npm run kind:up):
#   1. creates the kind cluster "faultline" (kind-config.yaml), or reuses it;
#   2. builds the three images, named from common/images.ts, and loads them;
#   3. installs manifests/overlays/dev and waits for the CRDs and the webhook;
#   4. runs the demo: namespace faultline-demo opted in, a ChaosTenant allowing
#      HTTP faults, an http-echo service, a ChaosPolicy delaying its inbound
#      requests by 300ms, and curl from a client pod showing the delay.
# Re-running is safe: every step is create-or-update.
#
# Needs: docker (with a running engine), kind >= v0.32.0, kubectl, and
# `npm ci` done (node_modules/.bin/node is the Node 24 that reads the image
# names). Environment: FAULTLINE_KIND_CLUSTER (default faultline).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

prog="hack/kind-up.sh"
die() { printf '%s: error: %s\n' "${prog}" "$*" >&2; exit 1; }
log() { printf '[kind-up] %s\n' "$*" >&2; }

# Prerequisites first, using bash builtins only, so a missing tool is reported
# as such and not as some later, stranger failure.
command -v docker >/dev/null 2>&1 \
  || die "docker not found in PATH. kind runs Kubernetes nodes as Docker containers; install Docker: https://docs.docker.com/get-docker/"
command -v kind >/dev/null 2>&1 \
  || die "kind not found in PATH; install kind v0.32.0 or later: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
command -v kubectl >/dev/null 2>&1 \
  || die "kubectl not found in PATH; install it: https://kubernetes.io/docs/tasks/tools/"
docker info >/dev/null 2>&1 \
  || die "the Docker engine is not running (or not reachable by this user): 'docker info' failed. Start Docker Desktop or the docker service and retry."

# kind-config.yaml pins a node image built for kind v0.32.0; older kind
# releases cannot boot it.
kind_version="$(kind version)"
[[ "${kind_version}" =~ v0\.([0-9]+)\.[0-9]+ ]] || die "cannot parse '${kind_version}' (kind version)"
(( BASH_REMATCH[1] >= 32 )) || die "kind v0.32.0 or later is required (found: ${kind_version})"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node="${repo}/node_modules/.bin/node"
[[ -x "${node}" ]] || die "${node} is missing; run 'npm ci' in ${repo} first"
cluster="${FAULTLINE_KIND_CLUSTER:-faultline}"
# Every kubectl call names the kind context: never act on whatever cluster the
# user's current context points at.
kctl() { kubectl --context "kind-${cluster}" "$@"; }

# --- 1. cluster --------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
  log "reusing kind cluster ${cluster}"
else
  log "creating kind cluster ${cluster}"
  kind create cluster --name "${cluster}" --config "${repo}/kind-config.yaml" --wait 120s
fi

# --- 2. images ---------------------------------------------------------------------
# Names and tags come from common/images.ts, the one place they are defined.
mapfile -t images < <(cd "${repo}" && "${node}" --input-type=module -e '
  const { IMAGES } = await import("./common/images.ts");
  console.log([IMAGES.webhook, IMAGES.proxy, IMAGES.init].join("\n"));
')
(( ${#images[@]} == 3 )) || die "could not read the image names from common/images.ts"
# shellcheck source=controlplane/versions.env
source "${repo}/hack/controlplane/versions.env" # TOXIPROXY_VERSION: the datapath tests' build
for pair in "webhook:${images[0]}" "proxy:${images[1]}" "init:${images[2]}"; do
  name="${pair%%:*}" image="${pair#*:}"
  log "building ${image}"
  # BuildKit: needed for the per-Dockerfile .dockerignore and cache mounts.
  DOCKER_BUILDKIT=1 docker build \
    --file "${repo}/images/${name}.Dockerfile" \
    --build-arg "TOXIPROXY_VERSION=${TOXIPROXY_VERSION}" \
    --tag "${image}" "${repo}"
done
log "loading images into ${cluster}"
kind load docker-image --name "${cluster}" "${images[@]}"

# --- 3. install --------------------------------------------------------------------
log "installing manifests/overlays/dev"
kctl apply -k "${repo}/manifests/overlays/dev"
kctl wait --for=condition=Established --timeout=60s \
  crd/chaospolicies.chaos.faultline.dev crd/chaostenants.chaos.faultline.dev
kctl -n faultline-system rollout status deployment/faultline-webhook --timeout=180s

# --- 4. demo -----------------------------------------------------------------------
# faultline-init needs NET_ADMIN, which only the `privileged` Pod Security level
# admits; the label states that explicitly instead of relying on kind's default.
log "demo: namespace, tenant, policy, http-echo"
kctl apply -f - <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: faultline-demo
  labels:
    faultline.dev/chaos: enabled
    pod-security.kubernetes.io/enforce: privileged
YAML

# The validating webhook fails closed, and right after the rollout the API
# server may not yet trust the webhook's fresh CA (caBundle patched at start),
# so the first writes are retried briefly.
apply_with_retry() {
  local manifest="$1" attempt
  for attempt in $(seq 1 30); do
    if kctl apply -f - <<<"${manifest}"; then return 0; fi
    log "apply refused (attempt ${attempt}/30; webhook still starting?), retrying in 2s"
    sleep 2
  done
  die "the webhook kept refusing the demo objects; see: kubectl --context kind-${cluster} -n faultline-system logs deploy/faultline-webhook"
}

apply_with_retry '
apiVersion: chaos.faultline.dev/v1alpha1
kind: ChaosTenant
metadata:
  name: demo
spec:
  namespaces: [faultline-demo]
  allow:
    kinds: [http.delay, http.abort]
    limits:
      maxDelay: 1s
      maxDuration: 1h
---
apiVersion: chaos.faultline.dev/v1alpha1
kind: ChaosPolicy
metadata:
  name: echo-latency
  namespace: faultline-demo
spec:
  selector:
    matchLabels:
      app: echo
  mode:
    type: all
  duration: 30m
  http:
    - direction: inbound
      match:
        port: 5678
      delay:
        fixed: 300ms
'

kctl apply -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: faultline-demo
spec:
  replicas: 1
  selector:
    matchLabels:
      app: echo
  template:
    metadata:
      labels:
        app: echo
    spec:
      containers:
        - name: echo
          image: docker.io/hashicorp/http-echo:1.0.0
          args: ["-listen=:5678", "-text=hello from faultline-demo"]
          ports:
            - containerPort: 5678
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: faultline-demo
spec:
  selector:
    app: echo
  ports:
    - port: 5678
      targetPort: 5678
YAML
kctl -n faultline-demo rollout status deployment/echo --timeout=180s
injected="$(kctl -n faultline-demo get pods -l app=echo \
  -o jsonpath='{.items[0].metadata.annotations.faultline\.dev/injected}')"
[[ -n "${injected}" ]] \
  || die "the echo pod was not injected; see docs/operations.md (Troubleshooting: pods not injected)"
kctl -n faultline-demo wait chaospolicy/echo-latency \
  --for=jsonpath='{.status.targetedPods}'=1 --timeout=60s
sleep 2 # a policy change reaches the sidecar within 1s

log "demo: 5 requests through the 300ms delay (time_total in seconds)"
# The client opts out of injection: only the server side should be delayed.
kctl -n faultline-demo delete pod curl --ignore-not-found --wait=true >/dev/null
times="$(kctl -n faultline-demo run curl --rm -i --restart=Never --quiet \
  --labels=faultline.dev/inject=false \
  --image=docker.io/curlimages/curl:8.11.1 --command -- \
  sh -c 'for i in 1 2 3 4 5; do curl -sS -o /dev/null -w "%{time_total}\n" http://echo:5678/; done')"
printf '%s\n' "${times}"
if awk '$1 < 0.3 { short = 1 } END { exit short }' <<<"${times}"; then
  log "every request took >= 300ms: the fault is live. Remove it with:"
  log "  kubectl --context kind-${cluster} -n faultline-demo delete chaospolicy echo-latency"
else
  die "some requests were faster than the 300ms delay; check 'kubectl --context kind-${cluster} -n faultline-demo describe chaospolicy echo-latency'"
fi
