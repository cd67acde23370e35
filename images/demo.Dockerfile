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
COPY demo/package.json demo/routes.ts demo/server.ts demo/main.ts ./
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node", "/app/main.ts"]
LABEL org.opencontainers.image.title="faultline-demo" \
      org.opencontainers.image.description="Faultline's demo app (HTTP/1.1 :8080, h2c :8081) and curl client" \
      org.opencontainers.image.licenses="Apache-2.0"
