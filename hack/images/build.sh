#!/usr/bin/env bash
# npm run images:build — every image the local node runs, with podman and no
# registry:
#   1. the base images the Dockerfiles start FROM (base.sh; only when missing
#      or stale);
#   2. images/{webhook,proxy,init,demo}.Dockerfile, unmodified, with
#      `podman build --pull=never` and the names in common/images.ts;
#   3. the pause image from hack/images/pause.
# An image whose inputs have not changed is skipped (see inputs()); what did
# change is rebuilt by podman with its layer cache.
#
# Outbound TLS may go through an intercepting proxy whose CA is given by
# SSL_CERT_FILE / NODE_EXTRA_CA_CERTS. The file is bind-mounted under /dev for
# the build (a tmpfs in every RUN, so not even the mount point lands in a
# layer), and its path passed as a build arg of that name, which only the
# stages that fetch (npm ci, go install) declare: it is in no shipped layer
# or image config. test/images checks that.
#
# Environment: FAULTLINE_IMAGES ("webhook proxy init demo pause", the default,
# or any subset) selects what to build; FAULTLINE_IMAGES_FORCE=1 hands every
# image to podman (still with its layer cache); FAULTLINE_IMAGES_REBUILD_BASE=1
# remakes the base images.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
prog="hack/images/build.sh"
here="${BASH_SOURCE[0]%/*}"; [[ "${here}" != "${BASH_SOURCE[0]}" ]] || here=.
# shellcheck source=lib.sh
source "${here}/lib.sh"

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

base_ids="$(for f in "${repo}"/images/*.Dockerfile; do
  for a in DEBIAN_IMAGE GO_IMAGE; do dockerfile_arg "${f}" "${a}"; done
done | sort -u | xargs podman image inspect --format '{{.Id}}')"
node_version="$(dockerfile_arg "${repo}/images/webhook.Dockerfile" NODE_VERSION)"
node_base_id="$(podman image inspect --format '{{.Id}}' \
  "$(dockerfile_arg "${repo}/images/webhook.Dockerfile" NODE_IMAGE | sed "s/\${NODE_VERSION}/${node_version}/")")"

# inputs DOCKERFILE CONTEXT [IGNOREFILE]: a hash of all a build reads — the
# Dockerfile, the files its ignore file admits (its !-lines), the base images,
# the build args and these scripts. An image labelled with the same hash is
# current, and is not even handed to podman (whose cache check alone re-reads
# every layer's inputs: ~20 s per image).
inputs() {
  local paths=(.)
  if [[ -n "${3:-}" ]]; then
    mapfile -t paths < <(sed -n 's/^!//p' "$3")
  fi
  {
    cat "$1" "${BASH_SOURCE[0]}" "${images_dir}/lib.sh" ${3:+"$3"}
    printf '%s\n' "${base_ids}" "${node_base_id}" "${TOXIPROXY_VERSION}" "${ca_args[*]}"
    tar -C "$2" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --exclude='*.test.ts' -cf - "${paths[@]}"
  } | sha256sum | cut -c1-32
}

# build IMAGE DOCKERFILE CONTEXT [IGNOREFILE]
build() {
  local started=${SECONDS} ignore=() hash
  hash="$(inputs "$2" "$3" "${4:-}")"
  if [[ "${FAULTLINE_IMAGES_FORCE:-0}" != 1 && "$(image_label "$1" faultline.build.inputs)" == "${hash}" ]]; then
    log "${1}: up to date"
    return
  fi
  [[ -n "${4:-}" ]] && ignore=(--ignorefile "$4")
  log "${1}: building from ${2#"${repo}/"}"
  # --network=host: RUN steps fetch from the registries as this machine does,
  # and podman creates no cni-podman0 bridge or NAT rules to leave behind.
  podman build --pull=never --layers --quiet --network=host \
    --file "$2" "${ignore[@]}" "${ca_args[@]}" \
    --build-arg "TOXIPROXY_VERSION=${TOXIPROXY_VERSION}" \
    --label "faultline.build.inputs=${hash}" \
    --tag "$1" "$3" >/dev/null \
    || die "building ${1} failed (see above)"
  log "${1}: done in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

for w in "${wanted[@]}"; do
  if [[ "${w}" == pause ]]; then
    build "${image[pause]}" "${images_dir}/pause/Containerfile" "${images_dir}/pause"
  else
    build "${image[${w}]}" "${repo}/images/${w}.Dockerfile" "${repo}" "${repo}/images/${w}.Dockerfile.dockerignore"
  fi
done
