# syntax=docker/dockerfile:1.7
#
# faultline-webhook: the admission server (`faultline webhook`).
# hack/kind-up.sh builds all three images, named from common/images.ts. By hand,
# from the repository root, tag with IMAGES.webhook from that file:
#   docker build -f images/webhook.Dockerfile -t ghcr.io/faultline-dev/faultline-webhook:v0.1.0 .
# Build context: the repository root. images/webhook.Dockerfile.dockerignore
# (BuildKit's per-Dockerfile ignore file) admits only what this image runs.
#
# Base images are pinned by exact version tag. Tags can be re-pushed, so the
# release pipeline resolves each to a digest (ARG ...@sha256:...) and records
# it; plain tags are used here because digests cannot be verified without a
# registry, and a wrong digest is worse than none. NODE_VERSION equals the
# `node` devDependency in package-lock.json, so tests and images run the same
# Node (test/unit/manifests-images.test.ts checks).
#
# Size, measured with podman on the local base images (README "Images"):
# 294 MB uncompressed / 87 MB gzip — debian slim 78 MB, the node binary
# ~127 MB, production node_modules ~98 MB (@kubernetes/client-node alone
# ~54 MB), sources < 1 MB.

ARG NODE_VERSION=24.21.0
ARG NODE_IMAGE=docker.io/library/node:${NODE_VERSION}-bookworm-slim
ARG DEBIAN_IMAGE=docker.io/library/debian:12.12-slim

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
# --ignore-scripts: no dependency code runs at build time. The only production
# package with an install script is fuse-native, whose script merely selects
# its bundled N-API prebuild — node-gyp-build does the same at require time.
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
# Debian slim plus the node binary alone: no npm, corepack or yarn in the image
# (less to patch, nothing that installs code at run time). The node binary needs
# only glibc, libstdc++ and libgcc_s, all in debian slim.
FROM ${DEBIAN_IMAGE}
# tini as PID 1 forwards SIGTERM and reaps zombies; node as PID 1 would ignore
# signals it has no handler for and delay every rollout by the grace period.
# apt-get clean: a base without Docker's docker-clean apt hook (such as the
# local ones from hack/images/base.sh) would keep the downloaded .debs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
# The compiled CLI and its production dependencies; no sources, tests, benchmarks or hack/.
COPY package.json ./
COPY --from=build /app/dist ./dist
# The "nonroot" UID/GID of distroless images; the Deployment asks for the same.
# Files stay root-owned and read-only to it: the server cannot rewrite itself.
USER 65532:65532
EXPOSE 8443
# --max-semi-space-size=2: V8 grows the young generation under load. After
# 10 s of reviews at max rate (a rollout of many pods) the heap had 79.7 MB
# committed, and at a steady 1,000 reviews/s the webhook then ran a 5-12 ms
# mark-compact every 300-500 ms (--trace-gc), which set its p99: 8.8-12.4 ms
# in 6 of 8 samples. With 2 MB: 22.4 MB committed, one mark-compact in 9 s,
# p99 1.5-2.1 ms in 4 of 4. CPU per review at max rate, against without it:
# 1.016x, 1.137x and 1.011x in three runs of 6-8 interleaved rounds each
# (2026-11-26); this machine moves one server's CPU per review by 1.6x from
# round to round.
# npm run bench:webhook runs the webhook with the flags read from this line.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node", "--max-semi-space-size=2", "/app/dist/faultline.js"]
CMD ["webhook"]
LABEL org.opencontainers.image.title="faultline-webhook" \
      org.opencontainers.image.description="Faultline admission webhook: sidecar injection and ChaosPolicy/ChaosTenant validation" \
      org.opencontainers.image.licenses="Apache-2.0"
