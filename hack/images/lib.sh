# Shared by hack/images/*.sh (sourced; not run on its own).
# shellcheck shell=bash

# Builtins only until need() has run, so a bare PATH still gets a clear message.
images_dir="$(cd "${BASH_SOURCE[0]%/*}" && pwd)"
repo="$(cd "${images_dir}/../.." && pwd)"
# Every podman call reads the repo's settings, not /etc (see containers.conf).
export CONTAINERS_CONF="${images_dir}/containers.conf"

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${prog:-hack/images}" "$*" >&2; exit 1; }

# need COMMAND APT-PACKAGE: stop before doing anything when a tool is missing.
need() {
  command -v "$1" >/dev/null 2>&1 \
    || die "$1 not found in PATH; install it with: apt-get install -y $2"
}

image_exists() { podman image exists "$1"; }

# image_label IMAGE KEY: the label's value, empty when the image or label is missing.
image_label() {
  podman image inspect --format "{{index .Labels \"$2\"}}" "$1" 2>/dev/null | sed 's/^<no value>$//'
}

# dockerfile_arg FILE NAME: the default of `ARG NAME=...` in a Dockerfile.
dockerfile_arg() {
  sed -n "s/^ARG $2=\(.*\)$/\1/p" "$1" | head -n 1
}

# Names of the three product images and the demo and pause images, from
# common/images.ts (the one place they are defined), one per line:
# webhook proxy init demo pause.
image_names() {
  local node="${repo}/node_modules/.bin/node"
  [[ -x "${node}" ]] || die "${node} is missing; run 'npm ci' in ${repo} first"
  (cd "${repo}" && "${node}" --input-type=module -e '
    const { IMAGES, DEMO_IMAGE, PAUSE_IMAGE } = await import("./common/images.ts");
    console.log([IMAGES.webhook, IMAGES.proxy, IMAGES.init, DEMO_IMAGE, PAUSE_IMAGE].join("\n"));
  ')
}
