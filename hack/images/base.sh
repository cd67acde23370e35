#!/usr/bin/env bash
# Makes, with no registry, the base images images/*.Dockerfile start FROM,
# under the exact names their ARG defaults use:
#   DEBIAN_IMAGE  mmdebstrap --variant=minbase (merged /usr, docs/man/locales
#                 excluded as in Debian's slim images), `podman import`ed;
#   NODE_IMAGE    that image + the node binary of the `node` npm package in
#                 node_modules (the Node the tests run) + npm;
#   GO_IMAGE      the same rootfs + ca-certificates + git + the local Go
#                 toolchain (go env GOROOT), laid out as the official image.
# These stand in for the Docker Hub images locally; they are never pushed.
# An image is rebuilt only when missing or made from other inputs (its
# faultline.base.recipe label); FAULTLINE_IMAGES_REBUILD_BASE=1 forces it.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
prog="hack/images/base.sh"
here="${BASH_SOURCE[0]%/*}"; [[ "${here}" != "${BASH_SOURCE[0]}" ]] || here=.
# shellcheck source=lib.sh
source "${here}/lib.sh"

# npm inside the node image (the deps stages run `npm ci`), fetched with
# `npm pack`; the 11.x line is what Node 24 bundles.
NPM_VERSION=11.21.2
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian ${SUITE} main"
  "deb http://deb.debian.org/debian ${SUITE}-updates main"
  "deb http://deb.debian.org/debian-security ${SUITE}-security main"
)
# Debian's slim images drop these at dpkg time; the rootfs keeps the rule, so
# packages the Dockerfiles install are trimmed too.
SLIM_DPKG=(
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
MERGED_USR=/usr/share/mmdebstrap/hooks/merged-usr

need podman podman
need mmdebstrap mmdebstrap
[[ -d "${MERGED_USR}" ]] || die "${MERGED_USR} is missing; mmdebstrap >= 1.0 ships it (apt-get install -y mmdebstrap)"
need npm npm
if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] \
    || die "go not found in PATH; the golang base image copies the local Go toolchain: install the version images/proxy.Dockerfile's GO_IMAGE names to /usr/local/go (https://go.dev/dl/)"
  PATH="/usr/local/go/bin:${PATH}"
fi

dockerfile="${repo}/images/proxy.Dockerfile"
node_version="$(dockerfile_arg "${dockerfile}" NODE_VERSION)"
debian_image="$(dockerfile_arg "${dockerfile}" DEBIAN_IMAGE)"
node_image="$(dockerfile_arg "${dockerfile}" NODE_IMAGE)"
node_image="${node_image//\$\{NODE_VERSION\}/${node_version}}"
go_image="$(dockerfile_arg "${dockerfile}" GO_IMAGE)"
[[ -n "${node_version}" && -n "${debian_image}" && -n "${go_image}" ]] \
  || die "could not read NODE_VERSION, DEBIAN_IMAGE and GO_IMAGE from ${dockerfile}"

# The `node` package installs the official release binary here (.bin/node links to it).
node_bin="${repo}/node_modules/node/bin/node"
[[ -x "${node_bin}" ]] || die "the node binary of the 'node' npm package is missing under ${repo}/node_modules; run 'npm ci' first"
got="$("${node_bin}" --version)"
[[ "${got}" == "v${node_version}" ]] \
  || die "node_modules has Node ${got}, the Dockerfiles want v${node_version}; run 'npm ci'"


go_version="${go_image##*:}"; go_version="${go_version%%-*}"
goroot="$(go env GOROOT)"
got="$(go env GOVERSION)"
[[ "${got}" == "go${go_version}" ]] \
  || die "the local Go is ${got} (${goroot}); ${go_image} needs go${go_version}: install it to /usr/local/go from https://go.dev/dl/"

# Bump when a change here alters what the images contain in a way the
# recipe inputs below do not capture.
RECIPE_REVISION=1
# recipe INPUT...: a hash of what an image is made from (not of this script's
# text, so a comment edit does not cost a rebuild).
recipe() {
  printf '%s\n' "${RECIPE_REVISION}" "${SUITE}" "${MIRRORS[@]}" "${SLIM_DPKG[@]}" "$@" | sha256sum | cut -c1-16
}

# fresh IMAGE RECIPE: true when IMAGE exists and was made from RECIPE.
fresh() {
  [[ "${FAULTLINE_IMAGES_REBUILD_BASE:-0}" != 1 ]] && [[ "$(image_label "$1" faultline.base.recipe)" == "$2" ]]
}

# rootfs TARBALL EXTRA-MMDEBSTRAP-ARGS...: a minbase rootfs. Written to a file,
# not piped, so a failed mmdebstrap never becomes an (empty) image.
rootfs() {
  local tarball="$1"; shift
  mmdebstrap --quiet --variant=minbase --hook-dir="${MERGED_USR}" "${SLIM_DPKG[@]}" \
    --aptopt='Acquire::Languages "none"' "$@" "${SUITE}" "${tarball}" "${MIRRORS[@]}" </dev/null \
    || die "mmdebstrap failed (see above); it needs root (or unprivileged user namespaces) and http://deb.debian.org"
}

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

# --- debian ---------------------------------------------------------------------------
r="$(recipe debian minbase)"
if fresh "${debian_image}" "${r}"; then
  log "${debian_image}: up to date"
else
  started=${SECONDS}
  log "${debian_image}: mmdebstrap ${SUITE} minbase"
  rootfs "${work}/debian.tar"
  podman import --quiet --change 'CMD ["bash"]' --change "LABEL faultline.base.recipe=${r}" \
    "${work}/debian.tar" "${debian_image}" >/dev/null
  log "${debian_image}: done in $((SECONDS - started)) s"
fi

# --- node -----------------------------------------------------------------------------
# By content, not path: every checkout of the repo shares podman's store, and
# must not make the others' base images look stale.
node_sum="$(sha256sum <"${node_bin}")"
debian_id="$(podman image inspect --format '{{.Id}}' "${debian_image}")"
r="$(recipe node "${node_sum}" "${NPM_VERSION}" "${debian_id}")"
if fresh "${node_image}" "${r}"; then
  log "${node_image}: up to date"
else
  started=${SECONDS}
  log "${node_image}: ${debian_image} + node v${node_version} + npm ${NPM_VERSION}"
  ctx="${work}/node"
  mkdir -p "${ctx}/root/usr/local/bin" "${ctx}/root/usr/local/lib/node_modules/npm"
  cp "${node_bin}" "${ctx}/root/usr/local/bin/node"
  (cd "${work}" && npm pack --silent "npm@${NPM_VERSION}" >/dev/null)
  tar -xzf "${work}/npm-${NPM_VERSION}.tgz" -C "${ctx}/root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "${ctx}/root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "${ctx}/root/usr/local/bin/npx"
  cat >"${ctx}/Containerfile" <<CONTAINERFILE
FROM ${debian_image}
COPY root/ /
LABEL faultline.base.recipe=${r}
CMD ["node"]
CONTAINERFILE
  podman build --quiet --pull=never --network=host --tag "${node_image}" "${ctx}" >/dev/null
  log "${node_image}: done in $((SECONDS - started)) s"
fi

# --- go -------------------------------------------------------------------------------
r="$(recipe go minbase ca-certificates,git "${goroot}" "$(go env GOVERSION)")"
if fresh "${go_image}" "${r}"; then
  log "${go_image}: up to date"
else
  started=${SECONDS}
  log "${go_image}: mmdebstrap ${SUITE} minbase + ca-certificates git + ${goroot} (go${go_version})"
  rootfs "${work}/go.tar" --include=ca-certificates,git \
    --customize-hook="mkdir -p \"\$1/usr/local\" \"\$1/go/bin\" \"\$1/go/src\"" \
    --customize-hook="copy-in ${goroot} /usr/local/" \
    --customize-hook="if [ \"${goroot##*/}\" != go ]; then mv \"\$1/usr/local/${goroot##*/}\" \"\$1/usr/local/go\"; fi"
  podman import --quiet \
      --change 'ENV GOTOOLCHAIN=local' --change 'ENV GOPATH=/go' \
      --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'WORKDIR /go' --change 'CMD ["bash"]' --change "LABEL faultline.base.recipe=${r}" \
      "${work}/go.tar" "${go_image}" >/dev/null
  log "${go_image}: done in $((SECONDS - started)) s"
fi
