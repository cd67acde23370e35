import { VERSION } from './version.ts';

// The one place image names and tags are defined. The webhook's injection
// defaults read them from here, kustomize's `images:` in manifests/ must agree
// (a unit test renders the manifests and checks), and the Dockerfiles in images/
// are built with these names by hack/kind-up.sh.
export const IMAGE_REGISTRY = 'ghcr.io/faultline-dev';
export const IMAGE_TAG = `v${VERSION}`;

export const IMAGES = {
  webhook: `${IMAGE_REGISTRY}/faultline-webhook:${IMAGE_TAG}`,
  proxy: `${IMAGE_REGISTRY}/faultline-proxy:${IMAGE_TAG}`,
  init: `${IMAGE_REGISTRY}/faultline-init:${IMAGE_TAG}`,
} as const;
