# syntax=docker/dockerfile:1.7
#
# faultline-proxy: the injected native sidecar (`faultline sidecar`), which
# supervises toxiproxy-server as a child for TCP faults.
# Build context: the repository root (see webhook.Dockerfile for pinning).
#
# Size, measured with podman (README "Images"): 305 MB uncompressed / 92 MB
# gzip — the webhook image's contents plus toxiproxy-server (~11 MB).
# It is pulled once per node, but it does sit on the start-up path of the
# first injected pod on each node.

ARG NODE_VERSION=24.21.0
ARG NODE_IMAGE=docker.io/library/node:${NODE_VERSION}-bookworm-slim
ARG DEBIAN_IMAGE=docker.io/library/debian:12.12-slim
ARG GO_IMAGE=docker.io/library/golang:1.26.8-bookworm

# ---------------------------------------------------------------- toxiproxy-server
# Built from source at the version hack/controlplane/versions.env pins (the
# datapath tests run that same build); kind-up.sh passes it explicitly.
# Runs on the build platform and cross-compiles (pure Go, CGO off), so a
# multi-arch build needs no emulation for this stage.
FROM --platform=${BUILDPLATFORM} ${GO_IMAGE} AS toxiproxy
ARG TOXIPROXY_VERSION=v2.12.0
# BuildKit and buildah set these; other builders leave them empty, and then
# the build platform's own GOOS/GOARCH apply.
ARG TARGETOS
ARG TARGETARCH
# As NODE_EXTRA_CA_CERTS in the deps stage below, for go's fetches.
ARG SSL_CERT_FILE
# `go install module@version` verifies the module against sum.golang.org.
# When cross-compiling, go install writes to $GOPATH/bin/<os>_<arch>/, hence
# the find. -X sets the version `toxiproxy-server -version` reports, without
# the tag's "v", as toxiproxy's own release builds and hack/controlplane/build.sh do.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS="${TARGETOS:-$(go env GOOS)}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" GOFLAGS=-trimpath \
    go install -ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}" \
      "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}" \
 && install -D -m 0755 "$(find "$(go env GOPATH)/bin" -type f -name server | head -n 1)" /out/toxiproxy-server

# ---------------------------------------------------------------- node runtime
FROM ${NODE_IMAGE} AS node

# ---------------------------------------------------------------- production deps
FROM ${NODE_IMAGE} AS deps
# Set only by hack/images/build.sh where outbound TLS goes through an
# intercepting proxy: the path of its CA, bind-mounted for the build. Declared
# in this stage alone, so npm ci trusts it and no shipped image holds it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# See webhook.Dockerfile for why scripts are skipped.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------- compiled JavaScript
# images/build.ts bundles the product sources to dist/ with esbuild, so the
# image runs plain JavaScript: no TypeScript and no type stripping at run time
# (that alone cost the proxy ~17 MB of idle RSS). The output is the same for
# every architecture, so this stage runs on the build platform. It needs the
# dev dependencies (esbuild); only dist/ leaves it.
FROM --platform=${BUILDPLATFORM} ${NODE_IMAGE} AS build
# As in the deps stage: trusted by npm ci here only, never shipped.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY images/build.ts ./images/build.ts
COPY cli ./cli
COPY common ./common
COPY contract ./contract
COPY kube ./kube
COPY policies ./policies
COPY certs ./certs
COPY webhook ./webhook
COPY sidecar ./sidecar
COPY pod-setup ./pod-setup
RUN node images/build.ts

# ---------------------------------------------------------------- runtime
FROM ${DEBIAN_IMAGE}
# tini: PID 1 that forwards SIGTERM to the proxy (which then stops its
# toxiproxy-server child) and reaps anything orphaned.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# On PATH, where `faultline sidecar` looks for it.
COPY --from=toxiproxy /out/toxiproxy-server /usr/local/bin/toxiproxy-server
WORKDIR /app
ENV NODE_ENV=production
# glibc gives each thread that mallocs its own arena and rarely returns their
# memory: V8's background compile threads left one or two ~9.5 MB arenas
# resident after a burst of TurboFan work (/proc/<pid>/smaps at peak load).
# Two arenas keep that memory reusable by the main thread. Peak RSS at max
# rate: 98-113 MB with the default, 90 MB with 2 (one run each, before
# --max-semi-space-size). npm run bench:sidecar applies this ENV too. What the
# arenas hold free after a burst the proxy itself hands back every 10 s
# (malloc_trim: sidecar/malloc-release.ts, npm run bench:malloc-release).
ENV MALLOC_ARENA_MAX=2
# V8's compilers take their scratch memory (zones) from malloc in segments of
# up to 32 KB. The burst of compiles when load starts left those segments free
# but resident in glibc's heap, between longer-lived allocations, and that set
# the proxy's peak RSS. From 32 KB up, malloc maps and unmaps each block
# instead. Thresholds of 16, 24 and 32 KB did the same; 40, 48 and 64 KB did
# nothing (undici's Pool alone, 5,800 requests: RSS 68-74 against 78-85 MB).
# npm run bench:proxy-flags with BENCH_CANDIDATE_ENV=MALLOC_MMAP_THRESHOLD_=32768
# (2026-11-27), two runs of 4 and 6 interleaved rounds, this over the image
# without it, median: peak RSS 0.908x and 0.872x (91.6 against 101.2 MB in the
# second), lower in all 10 rounds; idle RSS 0.995x and 0.994x; CPU per request
# 0.954x and 0.967x with a fault on the port that matches nothing, 1.099x and
# 0.953x with one that fires, within this machine's round-to-round spread.
# npm run bench:sidecar's high-water mark moved less (96.2 and 95.8 against
# 97.6 MB, one run each; its sampled peak 85 and 86 against 89.1): there the
# mark is set by one transient when HTTP load starts, TurboFan compiling
# undici's llhttp parser (compiled alone: RSS 27 MB above where it started for
# a moment, 6 MB after), which --liftoff-only (below) leaves out.
ENV MALLOC_MMAP_THRESHOLD_=32768
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
# UID/GID 16337 is the contract with faultline-init: traffic from this UID is
# excluded from redirection, which is what keeps the proxy's own upstream
# connections from looping back into it. The webhook sets runAsUser from its
# --proxy-uid too; the two must agree if either is changed.
USER 16337:16337
# --liftoff-only: V8 runs WebAssembly on Liftoff's baseline code and never
# tiers it up to TurboFan. The proxy's one WebAssembly module is undici's
# llhttp, the HTTP/1 fault path's response parser, and tiering it up set the
# proxy's high-water mark: TurboFan compiling llhttp's parse function (33,670
# bytes of WebAssembly) takes up to 22.8 MB of scratch memory at once, for
# 190-260 ms (--trace-wasm-compilation-times), as the HTTP path's first load
# starts, on top of what the pod's other traffic already holds. Liftoff's code
# parses a response in 2.3-2.7 us against TurboFan's 1.2 (llhttp alone, six
# headers), about 1% of the proxy's CPU per request. npm run bench:proxy-flags
# (2026-11-27, load 0.3-2.3, the HTTP load after 1 s on the raw path), this
# flag over the image without it, median (range), runs of 4 and 6 rounds:
# peak RSS 0.956x (0.952-0.975) and 0.945x (0.925-0.983), 90.7 against 95.6 MB
# in the second, lower in all 10 rounds; CPU per request with a fault on the
# port that matches nothing 0.79x (0.76-1.30) and 1.075x (0.95-1.20), with one
# that fires 0.92x (0.82-1.33) and 1.097x (0.84-1.57): over these and a first
# run of 6 without the raw-path load, 16 rounds, 1.02x and 0.99x, within this
# machine's spread; idle RSS 1.008x (+0.6 MB) in every round, which is the
# price. npm run bench:sidecar, one run each: high-water mark 93.6 against
# 96.5 MB, idle with the Kubernetes source 67.2 against 66.6.
# That price comes with any V8 code-generation flag on Node's command line:
# it changes V8's cached-data tag (v8.cachedDataVersionTag();
# --max-semi-space-size leaves it alone), so V8 refuses the code cache Node
# embeds for its own modules and compiles them from source. A bare Node that
# loads http, https and net idles at 50.4-50.5 against 49.7-49.8 MB with the
# flag (3 runs each), and `node -e` requiring http and https starts in 104-113
# against 84-90 ms (20 starts, 3 times). Set at runtime instead
# (v8.setFlagsFromString), --liftoff-only does not take: its implications are
# applied at startup only, and TurboFan still ran. --no-wasm-dynamic-tiering
# --no-wasm-tier-up do take, but every module Node loads after them misses the
# cache too: +2.7 MB for zlib, child_process and dns. Set only while llhttp's
# bytes compile and then restored, they left TurboFan to run under load.
# The same flag was dropped on 2026-11-26 for 0.41x the rate when nothing
# matched, measured at load 9.9-10.9 on these 2 cores; the 16 rounds above
# found no such cost, and the llhttp figures bound it near 1 us a request.
# (Most of the memory it saved then was fetch()'s own undici, since gone:
# sidecar/toxiproxy-http.ts.)
# Tiering llhttp up at idle instead, before any load (--no-wasm-dynamic-tiering
# --no-wasm-lazy-compilation, and the same bytes compiled early so that V8's
# module cache hands undici the result) moves the burst rather than removing
# it: +26 MB for a moment and +5.2 MB after (a plain Node 24 with undici's
# Pool loaded, 2 runs, 2026-11-27). At runtime (v8.setFlagsFromString) the
# same flags compile Liftoff code only: TurboFan still ran under load.
# Rejected the same way (interleaved runs, 2026-11-26, load 8-9; idle RSS with
# the K8s source, 3 runs each, and peak RSS and proxy CPU per request at max
# rate on the HTTP/1 path, 2 runs each): --no-turbofan saves 3.2 MB idle but
# costs 1.3-1.5x the CPU per request and raised the peak; --no-maglev,
# --no-sparkplug, --optimize-for-size, --single-threaded, --v8-pool-size=1,
# UV_THREADPOOL_SIZE=1 and MALLOC_TRIM_THRESHOLD_/MALLOC_MMAP_THRESHOLD_ moved
# idle RSS by under 1 MB and the peak by less than its run-to-run spread
# (84-97 MB) (a 32 KB MALLOC_MMAP_THRESHOLD_, measured again with more rounds
# on 2026-11-27, is in: see its ENV); --max-old-space-size=32 saved 0.9 MB
# idle for a heap limit a busy proxy could hit.
# Raising V8's tier-up thresholds (BENCH_CANDIDATE_FLAGS=
# "--invocation-count-for-turbofan=100000 --invocation-count-for-maglev=20000
# --invocation-count-for-osr=50000 --invocation-count-for-maglev-osr=20000")
# keeps startup from compiling anything: at the defaults, Maglev compiles 22
# functions while the proxy starts, half of them Node's path and URL code
# resolving modules (--trace-opt), and the compiler's pages stay resident.
# Idle RSS (a pod with a live plan) 61.8 against 63.9 MB, but every function
# then runs unoptimized for its first 100,000 calls: 1.58x the CPU per request
# when nothing matches and 1.34x when a fault fires, in 5 s loads at max rate,
# and the peak no lower (1.02x) (npm run bench:proxy-flags, 4 interleaved
# rounds, 2026-11-27).
# --max-semi-space-size=2: V8 grows the young generation's two semi-spaces up
# to 16 MB each under load, and the proxy's per-request garbage is
# short-lived, so a scavenge of a small semi-space finds little alive. Too
# small, though, and what is in flight when it fills is promoted: with many
# requests in flight at once, old space fills with them, and the pages that
# garbage took stay resident after it is collected, until V8's memory reducer
# runs (100 s later on a quiet proxy). npm run bench:proxy-flags (2026-11-27,
# two runs of 4 interleaved rounds, load 1.2-2.2), 2 MB over 1 MB, median
# (range): a burst of 50,000 requests with 200 in flight (20 connections, 10
# pipelined) peaked at 0.739x (0.737-0.836) and 0.697x (0.665-0.758), 96.3
# against 128.2 MB in the second, and RSS 5 s after it was 0.757x and 0.692x;
# the peak at max rate with 16 connections 0.988x (0.938-1.023) and 1.021x
# (1.019-1.068); CPU per request 1.04x/0.99x with no fault matching,
# 1.09x/0.89x with one firing, 0.94x/0.86x in the burst; idle RSS 1.014x and
# 1.017x (+1.1 MB), which is the price: the young generation grows to its 2 MB
# semi-spaces while the proxy starts (new space at idle 3.8-4.0 against 2.0
# MB), and --min-semi-space-size=1 does not stop it. With 4 MB (one run of 4
# rounds): the burst 0.723x, but the peak at max rate 1.044x. npm run
# bench:sidecar, two runs against three with 1 MB the same day: idle with the
# Kubernetes source 69.1 and 69.3 against 67.1-67.3 MB; the high-water mark
# over all its loads 91.9 and 99.9 against 134.5-157.3 MB (RSS sampled every 2
# ms; 134.5 with sidecar/pipe.ts's relay already in). 1 MB was chosen on
# 2026-11-26 at a steady 1,500 req/s, few requests in flight, before the
# malloc settings above: peak 98.8 MB default, 88.8 MB with 1 MB, 94.1 MB with
# 2.
# --heap-growing-percent=30: after each full collection V8 lets the old
# generation grow to a limit of up to 4x what survived (its dynamic factor,
# from how fast it collects against how fast the proxy allocates: 3.8 here,
# --trace-gc-verbose), and a full collection waits for that limit. A proxy
# that starts into a burst runs code not yet tiered up, so more of each
# request is promoted, and with ~14 MB live the old generation reached 57-63
# MB between collections, pages V8 then kept. 30% is V8's own conservative
# factor, and the most it allows on its smallest devices; with ~14 MB live
# its floor of live + 8 MB sets the limit instead. The pod's memory limit does
# not get this: Node sizes the heap from the container's cgroup (262 MB under
# the default 256Mi), the default heap for that much memory, and for a default
# heap V8 keeps the 4x factor (57-63 MB again in a 256 MiB cgroup).
# --max-old-space-size=256 brings the factor down too, but as a fixed heap
# cap that would no longer follow the pod's limit. npm run bench:proxy-flags
# (2026-11-27, two runs of 4 interleaved rounds, load 1.0-1.9; the second
# against --heap-growing-percent=0, which undoes it), with the flag over
# without, median (range): the same burst as a fresh proxy's first load
# peaked at 0.760x (0.730-0.884) and 0.789x (0.770-0.878), 101.8 against
# 129.1 MB in the second, and RSS 5 s after it was 0.758x and 0.786x; CPU
# per request in it 0.94x (0.70-1.19) and 1.12x (0.87-1.25); the burst after
# the max-rate loads 0.985x and 0.985x, the peak at max rate 1.006x and
# 1.019x, idle RSS 1.002x and 1.003x; CPU per request with no fault matching
# 0.94x and 0.99x, with one firing 0.98x and 1.02x, in the later burst 0.80x
# and 0.95x: within this machine's spread. The flag changes V8's cached-data
# tag as --liftoff-only does, which already costs Node's embedded code cache
# (above).
# npm run bench:sidecar runs the proxy with the flags read from this line.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node", "--max-semi-space-size=2", "--liftoff-only", "--heap-growing-percent=30", "/app/dist/faultline.js"]
CMD ["sidecar"]
LABEL org.opencontainers.image.title="faultline-proxy" \
      org.opencontainers.image.description="Faultline fault-injecting proxy sidecar (HTTP faults, TCP faults via Toxiproxy)" \
      org.opencontainers.image.licenses="Apache-2.0"
