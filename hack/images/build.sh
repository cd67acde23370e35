#!/usr/bin/env bash
# npm run images:build — every image the local node runs, with podman and no
# registry:
#   1. the base images the Dockerfiles start FROM (base.sh; only when missing
#      or stale);
#   2. images/{webhook,proxy,init,demo}.Dockerfile, unmodified, with
#      `podman build --pull=never` and the names in common/images.ts;
#   3. the pause image from hack/images/pause.
# Layer caching makes a re-run with nothing changed take seconds.
#
# Outbound TLS may go through an intercepting proxy whose CA is given by
# SSL_CERT_FILE / NODE_EXTRA_CA_CERTS. The file is bind-mounted under /dev for
# the build (a tmpfs in every RUN, so not even the mount point lands in a
# layer), and its path passed as a build arg of that name, which only the
# stages that fetch (npm ci, go install) declare: it is in no shipped layer
# or image config. test/images checks that.
#
# Environment: FAULTLINE_IMAGES ("webhook proxy init demo pause", the default,
# or any subset) selects what to build; FAULTLINE_IMAGES_REBUILD_BASE=1
# remakes the base images.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
prog="hack/images/build.sh"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need podman podman
need mmdebstrap mmdebstrap

read -r -a wanted <<<"${FAULTLINE_IMAGES:-webhook proxy init demo pause}"
for w in "${wanted[@]}"; do
  case "${w}" in webhook|proxy|init|demo|pause) ;; *) die "FAULTLINE_IMAGES: unknown image '${w}' (known: webhook proxy init demo pause)" ;; esac
done
mapfile -t names < <(image_names)
(( ${#names[@]} == 5 )) || die "could not read the image names from common/images.ts"
declare -A image=([webhook]="${names[0]}" [proxy]="${names[1]}" [init]="${names[2]}" [demo]="${names[3]}" [pause]="${names[4]}")

bash "${images_dir}/base.sh"

# shellcheck source=../controlplane/versions.env
source "${repo}/hack/controlplane/versions.env" # TOXIPROXY_VERSION, as the tests' build

ca_args=()
for var in SSL_CERT_FILE NODE_EXTRA_CA_CERTS; do
  file="${!var:-}"
  [[ -n "${file}" ]] || continue
  [[ -r "${file}" ]] || die "${var}=${file} is not a readable file"
  inside="/dev/faultline-build-${var}.pem"
  ca_args+=(--volume "$(readlink -f "${file}"):${inside}:ro" --build-arg "${var}=${inside}")
done

# build NAME IMAGE DOCKERFILE CONTEXT [IGNOREFILE]
build() {
  local started=${SECONDS} ignore=()
  [[ -n "${5:-}" ]] && ignore=(--ignorefile "$5")
  log "${2}: building from ${3#"${repo}/"}"
  podman build --pull=never --layers --quiet \
    --file "$3" "${ignore[@]}" "${ca_args[@]}" \
    --build-arg "TOXIPROXY_VERSION=${TOXIPROXY_VERSION}" \
    --tag "$2" "$4" >/dev/null \
    || die "building ${2} failed (see above)"
  log "${2}: done in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$2" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

for w in "${wanted[@]}"; do
  if [[ "${w}" == pause ]]; then
    build pause "${image[pause]}" "${images_dir}/pause/Containerfile" "${images_dir}/pause"
  else
    build "${w}" "${image[${w}]}" "${repo}/images/${w}.Dockerfile" "${repo}" "${repo}/images/${w}.Dockerfile.dockerignore"
  fi
done
