# syntax=docker/dockerfile:1.7
#
# faultline-demo: the walkthrough's app (demo/: HTTP/1.1 on 8080 with /healthz
# for a readinessProbe, h2c with prior knowledge on 8081), which doubles as the
# client pod: curl with HTTP/2 (`curl --http2-prior-knowledge`) is inside.
# Build context: the repository root; built by `npm run images:build` as
# DEMO_IMAGE from common/images.ts. Not a released image.

ARG NODE_VERSION=24.21.0
ARG NODE_IMAGE=docker.io/library/node:${NODE_VERSION}-bookworm-slim
ARG DEBIAN_IMAGE=docker.io/library/debian:12.12-slim

FROM ${NODE_IMAGE} AS node

# ---------------------------------------------------------------- compiled JavaScript
# As for the product images (webhook.Dockerfile): images/build.ts bundles
# demo/main.ts with esbuild into one plain JavaScript file, dist/demo/main.js,
# so the image runs no TypeScript and no type stripping. The demo imports only
# Node's own modules, so the bundle is all it needs: no node_modules. This
# stage needs the dev dependencies (esbuild); only dist/demo/ leaves it. Its
# first steps are the product images' own, so their layers are reused.
FROM --platform=${BUILDPLATFORM} ${NODE_IMAGE} AS build
# Set only by hack/images/build.sh where outbound TLS goes through an
# intercepting proxy: the path of its CA, bind-mounted for the build. Declared
# in this stage alone, so npm ci trusts it and no shipped image holds it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY images/build.ts ./images/build.ts
COPY demo ./demo
RUN node images/build.ts demo

FROM ${DEBIAN_IMAGE}
# curl: Debian's is built with nghttp2 (HTTP/2). tini: PID 1, reaps what
# `kubectl exec` leaves behind. apt-get clean: bases without Docker's
# docker-clean hook keep the downloaded .debs otherwise.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
# package.json: "type": "module", so node loads the ESM bundle as such.
COPY demo/package.json ./
COPY --from=build /app/dist/demo/main.js ./main.js
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node", "/app/main.js"]
LABEL org.opencontainers.image.title="faultline-demo" \
      org.opencontainers.image.description="Faultline's demo app (HTTP/1.1 :8080, h2c :8081) and curl client" \
      org.opencontainers.image.licenses="Apache-2.0"
