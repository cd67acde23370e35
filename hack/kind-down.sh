#!/usr/bin/env bash
# Deletes the local kind cluster created by hack/kind-up.sh (npm run kind:down).
# The images built by kind-up.sh stay in the local Docker image store.
set -euo pipefail

cluster="${FAULTLINE_KIND_CLUSTER:-faultline}"

die() { printf 'hack/kind-down.sh: error: %s\n' "$*" >&2; exit 1; }

command -v kind >/dev/null 2>&1 \
  || die "kind not found in PATH; install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"

if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
  kind delete cluster --name "${cluster}"
else
  printf 'hack/kind-down.sh: no kind cluster named %s; nothing to do\n' "${cluster}" >&2
fi
