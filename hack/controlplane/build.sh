#!/usr/bin/env bash
# Builds the local cluster's binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy, kubelet, kubectl, etcd, coredns, toxiproxy-server)
# and the benchmarks' load generator (open-loop, on vegeta)
# from the Go module proxy at the versions in versions.env,
# into a per-version cache outside the repo. Binaries that already exist and
# report the pinned version are not rebuilt.
#
# Progress goes to stderr; the LAST line of stdout is always
#   FAULTLINE_BIN_DIR=<absolute dir>
#
# Environment:
#   FAULTLINE_BIN_CACHE      cache root (default: $HOME/.cache/faultline/bin)
#   FAULTLINE_GO_BUILD_JOBS  go build -p (default: number of CPUs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prog="hack/controlplane/build.sh"

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "${prog}" "$*" >&2; exit 1; }

# --- versions --------------------------------------------------------------
# shellcheck source=/dev/null
source "${here}/versions.env"
for v in KUBERNETES_VERSION ETCD_VERSION TOXIPROXY_VERSION COREDNS_VERSION VEGETA_VERSION; do
  [[ -n "${!v:-}" ]] || die "${v} is not set in ${here}/versions.env"
done
[[ "${KUBERNETES_VERSION}" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] \
  || die "KUBERNETES_VERSION=${KUBERNETES_VERSION} is not of the form v1.MINOR.PATCH"
k8s_minor="${BASH_REMATCH[1]}"
k8s_staging_version="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

# --- go.mod files must agree with versions.env (text check, no network) ----
# Prints the version go.mod requires for module $2 (ignores replace lines).
required_version() {
  awk -v m="$2" '
    /^replace[[:space:]]*\(/ { inrep = 1; next }
    inrep && /^\)/           { inrep = 0; next }
    inrep || /^replace[[:space:]]/ || /=>/ { next }
    { sub(/^require[[:space:]]+/, ""); if ($1 == m) { print $2; exit } }
  ' "$1"
}
check_require() { # dir module want
  local got
  got="$(required_version "${here}/$1/go.mod" "$2")"
  [[ "${got}" == "$3" ]] || die "$1/go.mod requires $2 ${got:-<none>} but versions.env pins $3; run hack/controlplane/update-modules.sh"
}
check_require kubernetes k8s.io/kubernetes "${KUBERNETES_VERSION}"
check_require etcd go.etcd.io/etcd/server/v3 "${ETCD_VERSION}"
check_require toxiproxy github.com/Shopify/toxiproxy/v2 "${TOXIPROXY_VERSION}"
check_require coredns github.com/coredns/coredns "${COREDNS_VERSION}"
check_require open-loop github.com/tsenart/vegeta/v12 "${VEGETA_VERSION}"
bad_replaces="$(awk -v want="${k8s_staging_version}" '
  /=>/ && $1 ~ /^k8s\.io\// { if (!($3 == $1 && $4 == want)) print $1 " => " $3 " " $4 }
' "${here}/kubernetes/go.mod")"
[[ -z "${bad_replaces}" ]] \
  || die "kubernetes/go.mod has replaces not at ${k8s_staging_version}: ${bad_replaces//$'\n'/, }; run hack/controlplane/update-modules.sh"
grep -q "=> k8s.io/api ${k8s_staging_version}\$" "${here}/kubernetes/go.mod" \
  || die "kubernetes/go.mod lacks the staging replaces for ${k8s_staging_version}; run hack/controlplane/update-modules.sh"

# --- output dir, lock ----------------------------------------------------------
cache_root="${FAULTLINE_BIN_CACHE:-${HOME}/.cache/faultline/bin}"
bin_dir="${cache_root}/k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_toxiproxy-${TOXIPROXY_VERSION}_coredns-${COREDNS_VERSION}"
mkdir -p "${bin_dir}"
bin_dir="$(cd "${bin_dir}" && pwd)"
if command -v flock >/dev/null 2>&1; then
  exec 9>"${bin_dir}/.build.lock"
  if ! flock -n 9; then
    log "waiting for another build.sh using ${bin_dir} ..."
    flock 9
  fi
fi

ticker_pid=""
build_pid=""
tmp_bin=""
cleanup() {
  if [[ -n "${ticker_pid}" ]]; then kill "${ticker_pid}" 2>/dev/null || true; fi
  if [[ -n "${build_pid}" ]]; then
    kill "${build_pid}" 2>/dev/null || true
    wait "${build_pid}" 2>/dev/null || true
  fi
  if [[ -n "${tmp_bin}" ]]; then rm -f "${tmp_bin}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- per-binary description ------------------------------------------------------
# open-loop is our own program: its version names a hash of its sources, so an
# edited main.go (or go.mod/go.sum) is rebuilt like a version bump.
open_loop_key() {
  (cd "${here}/open-loop" && export LC_ALL=C && cat go.mod go.sum ./*.go) | sha256sum | cut -c1-16
}
# version_cmd NAME PATH: prints the binary's version output.
version_cmd() {
  case "$1" in
    kube-*|kubelet)   "$2" --version ;;
    kubectl)          "$2" version --client ;;
    etcd)             "$2" --version ;;
    coredns)          "$2" -version ;;
    toxiproxy-server) "$2" -version ;;
    open-loop)        "$2" -version ;;
  esac
}
# expected_version NAME: a string the version output must contain.
expected_version() {
  case "$1" in
    kube-*|kubelet)   echo "Kubernetes ${KUBERNETES_VERSION}" ;;
    kubectl)          echo "Client Version: ${KUBERNETES_VERSION}" ;;
    etcd)             echo "etcd Version: ${ETCD_VERSION#v}" ;;
    coredns)          echo "CoreDNS-${COREDNS_VERSION#v}" ;;
    toxiproxy-server) echo "version ${TOXIPROXY_VERSION#v}" ;;
    open-loop)        echo "open-loop $(open_loop_key) vegeta ${VEGETA_VERSION}" ;;
  esac
}
is_current() { # NAME PATH
  [[ -x "$2" ]] || return 1
  local out
  out="$(version_cmd "$1" "$2" 2>&1)" || return 1
  [[ "${out}" == *"$(expected_version "$1")"* ]]
}

# FAULTLINE_BINARIES narrows the set (e.g. the API-only control plane needs
# just the first four of the default list's Kubernetes half; bench/open-loop.ts
# just open-loop).
read -r -a names <<<"${FAULTLINE_BINARIES:-kube-apiserver kubectl etcd toxiproxy-server kube-controller-manager kube-scheduler kube-proxy kubelet coredns open-loop}"
for n in "${names[@]}"; do
  case "${n}" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubelet|kubectl|etcd|coredns|toxiproxy-server|open-loop) ;;
    *) die "FAULTLINE_BINARIES names an unknown binary: ${n}" ;;
  esac
done
todo=()
for n in "${names[@]}"; do
  if is_current "${n}" "${bin_dir}/${n}"; then
    log "${n}: up to date, skipping"
  else
    todo+=("${n}")
  fi
done

if (( ${#todo[@]} == 0 )); then
  echo "FAULTLINE_BIN_DIR=${bin_dir}"
  exit 0
fi

# --- toolchain + modules (only when something must be built) --------------------
if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:${PATH}"
  else
    die "'go' not found on PATH; install Go >= 1.26 (e.g. to /usr/local/go) and put its bin/ on PATH"
  fi
fi
log "using $(go version)"

prepared=()
prepare_module() { # dir
  local d=$1 p
  for p in "${prepared[@]+"${prepared[@]}"}"; do [[ "${p}" == "${d}" ]] && return 0; done
  local errlog
  errlog="$(mktemp)"
  log "${d}: go mod download (uses the module cache; the network only if something is missing)"
  if ! (cd "${here}/${d}" && go mod download) 2>"${errlog}"; then
    tail -n 5 "${errlog}" >&2
    rm -f "${errlog}"
    die "'go mod download' failed in hack/controlplane/${d}: the Go module proxy ($(go env GOPROXY)) is unreachable or a module is missing; restore network access to it (or set GOPROXY) and re-run"
  fi
  rm -f "${errlog}"
  prepared+=("${d}")
}

# Checks the versions Go actually selects (after download, works offline).
verify_selected() { # dir module want
  local got
  got="$(cd "${here}/$1" && go list -mod=readonly -m -f '{{.Version}}' "$2")"
  [[ "${got}" == "$3" ]] || die "$1: Go selects $2 ${got} but versions.env pins $3; run hack/controlplane/update-modules.sh"
}

k8s_ldflags=""
kubernetes_ldflags() {
  [[ -n "${k8s_ldflags}" ]] && return 0
  verify_selected kubernetes k8s.io/kubernetes "${KUBERNETES_VERSION}"
  local unreplaced
  unreplaced="$(cd "${here}/kubernetes" && go list -mod=readonly -m \
    -f '{{if and (eq .Version "v0.0.0") (not .Replace)}}{{.Path}}{{end}}' all | tr '\n' ' ')"
  [[ -z "${unreplaced// /}" ]] \
    || die "kubernetes/go.mod: staging modules without a replace: ${unreplaced}; run hack/controlplane/update-modules.sh"
  # Reproducible build date: the release time the module proxy records for the tag.
  local build_date key val
  build_date="$(cd "${here}/kubernetes" && go list -mod=readonly -m \
    -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
  # Same variables as upstream hack/lib/version.sh. The release commit is not
  # available from the module proxy, so gitCommit is left empty.
  for kv in "gitVersion=${KUBERNETES_VERSION}" "gitMajor=1" "gitMinor=${k8s_minor}" \
            "gitTreeState=clean" "gitCommit=" "buildDate=${build_date}"; do
    key="${kv%%=*}" val="${kv#*=}"
    k8s_ldflags+=" -X k8s.io/component-base/version.${key}=${val}"
    k8s_ldflags+=" -X k8s.io/client-go/pkg/version.${key}=${val}"
  done
}

build_one() { # NAME
  local name=$1 dir pkg ldflags="-s -w"
  case "${name}" in
    kube-*|kubelet|kubectl)
      dir=kubernetes pkg="k8s.io/kubernetes/cmd/${name}"
      prepare_module "${dir}"
      kubernetes_ldflags
      ldflags+="${k8s_ldflags}"
      ;;
    etcd)
      # etcd reports its version from a constant in go.etcd.io/etcd/api/v3/version.
      dir=etcd pkg=.
      prepare_module "${dir}"
      verify_selected etcd go.etcd.io/etcd/server/v3 "${ETCD_VERSION}"
      verify_selected etcd go.etcd.io/etcd/api/v3 "${ETCD_VERSION}"
      ;;
    coredns)
      # CoreDNS reports its version from a constant in coremain.
      dir=coredns pkg=.
      prepare_module "${dir}"
      verify_selected coredns github.com/coredns/coredns "${COREDNS_VERSION}"
      ;;
    toxiproxy-server)
      dir=toxiproxy pkg=github.com/Shopify/toxiproxy/v2/cmd/server
      prepare_module "${dir}"
      verify_selected toxiproxy github.com/Shopify/toxiproxy/v2 "${TOXIPROXY_VERSION}"
      # Upstream releases (goreleaser) set Version without the leading "v".
      ldflags+=" -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}"
      ;;
    open-loop)
      dir=open-loop pkg=.
      prepare_module "${dir}"
      verify_selected open-loop github.com/tsenart/vegeta/v12 "${VEGETA_VERSION}"
      ldflags+=" -X main.sourceKey=$(open_loop_key)"
      ;;
  esac

  tmp_bin="${bin_dir}/.${name}.tmp.$$"
  local start now rc=0
  start="$(date +%s)"
  log "${name}: building ${pkg} (in hack/controlplane/${dir}) ..."
  (
    trap 'kill $! 2>/dev/null; exit 0' TERM
    while :; do
      sleep 15 & wait $!
      log "${name}: still building, $(( $(date +%s) - start ))s elapsed"
    done
  ) &
  ticker_pid=$!
  # In the background so that an interrupted build.sh also stops go build.
  (cd "${here}/${dir}" && CGO_ENABLED=0 exec go build -mod=readonly -trimpath -buildvcs=false \
      -p "${FAULTLINE_GO_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}" \
      -ldflags "${ldflags}" -o "${tmp_bin}" "${pkg}") &
  build_pid=$!
  wait "${build_pid}" || rc=$?
  build_pid=""
  kill "${ticker_pid}" 2>/dev/null || true
  wait "${ticker_pid}" 2>/dev/null || true
  ticker_pid=""
  now="$(date +%s)"
  (( rc == 0 )) || die "go build of ${name} failed after $(( now - start ))s (see the go output above)"

  local out
  out="$(version_cmd "${name}" "${tmp_bin}" 2>&1)" || die "built ${name} but '${name} version' failed: ${out}"
  [[ "${out}" == *"$(expected_version "${name}")"* ]] \
    || die "built ${name} but it reports '${out//$'\n'/ | }', expected '$(expected_version "${name}")'"
  mv -f "${tmp_bin}" "${bin_dir}/${name}"
  tmp_bin=""
  log "${name}: built in $(( now - start ))s -> ${bin_dir}/${name}"
}

total_start="$(date +%s)"
for n in "${todo[@]}"; do
  build_one "${n}"
done
log "built ${todo[*]} in $(( $(date +%s) - total_start ))s"
echo "FAULTLINE_BIN_DIR=${bin_dir}"
