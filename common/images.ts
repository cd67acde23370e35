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

// Built by `npm run images:build` for the local node and never released: the
// demo app of the walkthrough (images/demo.Dockerfile), and the pod sandbox
// image the node's containerd is configured with (hack/images/pause).
export const DEMO_IMAGE = `${IMAGE_REGISTRY}/faultline-demo:${IMAGE_TAG}`;
export const PAUSE_IMAGE = 'localhost/faultline/pause:3.10';
