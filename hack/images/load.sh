#!/usr/bin/env bash
# hack/images/load.sh CONTAINERD-SOCKET: imports the five images `npm run
# images:build` makes (webhook, proxy, init, demo, pause; names from
# common/images.ts) from podman into containerd's k8s.io namespace, where the
# kubelet (CRI) finds them. Images containerd already holds with the same
# config digest are skipped, so a re-run only moves what was rebuilt.
# Environment: FAULTLINE_IMAGES selects a subset, as for build.sh.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
prog="hack/images/load.sh"
here="${BASH_SOURCE[0]%/*}"; [[ "${here}" != "${BASH_SOURCE[0]}" ]] || here=.
# shellcheck source=lib.sh
source "${here}/lib.sh"

(( $# == 1 )) || die "usage: hack/images/load.sh CONTAINERD-SOCKET (e.g. /run/containerd/containerd.sock)"
socket="$1"
[[ -S "${socket}" ]] || die "${socket} is not a socket; is containerd running with this address?"
need podman podman
need ctr containerd

read -r -a wanted <<<"${FAULTLINE_IMAGES:-webhook proxy init demo pause}"
mapfile -t names < <(image_names)
(( ${#names[@]} == 5 )) || die "could not read the image names from common/images.ts"
declare -A image=([webhook]="${names[0]}" [proxy]="${names[1]}" [init]="${names[2]}" [demo]="${names[3]}" [pause]="${names[4]}")

kctr() { ctr --address "${socket}" --namespace k8s.io "$@"; }
kctr version >/dev/null || die "cannot talk to containerd at ${socket} (ctr version failed)"

# loaded_config IMAGE: the config digest of IMAGE in containerd, empty if absent.
# (podman's image ID is that same digest: the config blob travels unchanged.)
loaded_config() {
  local manifest
  manifest="$(kctr images ls "name==$1" 2>/dev/null | awk 'NR == 2 { print $3 }')"
  [[ -n "${manifest}" ]] || return 0
  kctr content get "${manifest}" 2>/dev/null \
    | tr -d ' \n' | grep -o '"config":{[^}]*}' | grep -o 'sha256:[0-9a-f]\{64\}' | head -n 1
}

todo=()
for w in "${wanted[@]}"; do
  name="${image[${w}]:-}"
  [[ -n "${name}" ]] || die "FAULTLINE_IMAGES: unknown image '${w}' (known: webhook proxy init demo pause)"
  id="$(podman image inspect --format '{{.Id}}' "${name}" 2>/dev/null)" \
    || die "${name} is not in podman's store; run 'npm run images:build' first"
  if [[ "$(loaded_config "${name}")" == "sha256:${id}" ]]; then
    log "${name}: already in containerd"
  else
    todo+=("${name}")
  fi
done
(( ${#todo[@]} > 0 )) || exit 0

log "importing into containerd (k8s.io): ${todo[*]}"
podman save --quiet --format docker-archive --multi-image-archive "${todo[@]}" \
  | kctr images import - >/dev/null \
  || die "import into containerd at ${socket} failed (see above)"
for name in "${todo[@]}"; do
  [[ "$(loaded_config "${name}")" == "sha256:$(podman image inspect --format '{{.Id}}' "${name}")" ]] \
    || die "${name}: containerd does not hold the image podman built after the import"
done
log "imported ${#todo[@]} image(s)"
