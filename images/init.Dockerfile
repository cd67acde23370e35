# syntax=docker/dockerfile:1.7
#
# faultline-init: runs `faultline init` (nftables redirection, netem, FUSE and
# time tooling set-up) as the injected init container, and `faultline kernel`
# (the FUSE server) as the privileged faultline-kernel native sidecar.
# Build context: the repository root (see webhook.Dockerfile for pinning).
#
# Size, measured with podman (README "Images"): 309 MB uncompressed / 93 MB
# gzip — the webhook image's contents plus nftables, iproute2, fuse3, libfuse2
# and libfaketime with their libraries (~15 MB).

ARG NODE_VERSION=24.21.0
ARG NODE_IMAGE=docker.io/library/node:${NODE_VERSION}-bookworm-slim
ARG DEBIAN_IMAGE=docker.io/library/debian:12.12-slim

FROM ${NODE_IMAGE} AS node

FROM ${NODE_IMAGE} AS deps
# Set only by hack/images/build.sh where outbound TLS goes through an
# intercepting proxy: the path of its CA, bind-mounted for the build. Declared
# in this stage alone, so npm ci trusts it and no shipped image holds it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# See webhook.Dockerfile for why scripts are skipped. fuse-native loads its
# bundled N-API prebuild (linux-x64; other architectures need a source build).
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${DEBIAN_IMAGE}
# nftables: `nft` for the port redirection (and the proxy-UID exclusion).
# iproute2:  `tc` (netem, rate) and `ip`.
# fuse3:     FUSE userspace tooling (fusermount3) for the IO-fault filesystem.
# libfuse2:  the system FUSE 2 library; fuse-native also bundles a copy
#            (fuse-shared-library-linux), this one backs builds that link the
#            system library instead.
# libfaketime: the LD_PRELOAD library init copies into the pod's faultline-time
#            volume for time faults. It is built against bookworm's glibc 2.36,
#            so time faults need glibc-based app images (not musl/Alpine).
# Debian puts libfaketime under the multiarch triplet; `faultline init` defaults
# to the amd64 path (/usr/lib/x86_64-linux-gnu/faketime/). The install -D adds an
# architecture-independent copy for other builds (`--faketime-lib
# /usr/local/lib/faultline/libfaketime.so.1`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini nftables iproute2 fuse3 libfuse2 libfaketime \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && install -D -m 0644 "$(dpkg -L libfaketime | grep -E '/libfaketime\.so\.1$')" \
      /usr/local/lib/faultline/libfaketime.so.1
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY cli ./cli
COPY common ./common
COPY policies ./policies
COPY certs ./certs
COPY webhook ./webhook
COPY sidecar ./sidecar
COPY controlplane ./controlplane
# Root is required: nft and tc in the pod's network namespace (NET_ADMIN), and
# mounting FUSE (SYS_ADMIN in faultline-kernel). The capabilities themselves are
# granted per container by the webhook's patch, only when a fault needs them.
USER 0:0
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node", "/app/bin/faultline.js"]
CMD ["init"]
LABEL org.opencontainers.image.title="faultline-init" \
      org.opencontainers.image.description="Faultline pod set-up (nftables, netem, FUSE, libfaketime) and FUSE server" \
      org.opencontainers.image.licenses="Apache-2.0"
