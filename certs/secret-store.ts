// The certificate Secret in the API server: read, create-if-absent and
// compare-and-swap update. Every write is conditional — CREATE fails with 409
// when another replica created it first, UPDATE carries the resourceVersion we
// read — so concurrent replicas never overwrite each other's CA; the loser
// re-reads and adopts the winner's material.
import { ApiException, CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { describeApiError } from '../kube/api-error.ts';
import { ROTATE_ANNOTATION, SECRET_KEYS, type SecretMaterial } from './secret-plan.ts';

export interface SecretRef {
  namespace: string;
  name: string;
}

export interface StoredSecret {
  material: SecretMaterial;
  annotations: Record<string, string>;
  /** The object as read: an update sends it back with our changes, resourceVersion included. */
  object: V1Secret;
}

/** `conflict`: someone else wrote first (409); re-read and decide again. */
export type WriteResult = StoredSecret | 'conflict';

const LABELS = { 'app.kubernetes.io/name': 'faultline', 'app.kubernetes.io/component': 'webhook', 'app.kubernetes.io/managed-by': 'faultline-webhook' };

export class SecretStore {
  readonly ref: SecretRef;
  #api: CoreV1Api;

  constructor(kubeConfig: KubeConfig, ref: SecretRef) {
    this.ref = ref;
    this.#api = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The Secret, or undefined when it does not exist. */
  async read(): Promise<StoredSecret | undefined> {
    try {
      return stored(await this.#api.readNamespacedSecret(this.ref));
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw describeApiError(err, `reading Secret ${this.#show()}`);
    }
  }

  async create(material: Required<SecretMaterial>): Promise<WriteResult> {
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: this.ref.name, namespace: this.ref.namespace, labels: LABELS },
      data: encode(material),
    };
    try {
      return stored(await this.#api.createNamespacedSecret({ namespace: this.ref.namespace, body }));
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return 'conflict';
      throw describeApiError(err, `creating Secret ${this.#show()}`);
    }
  }

  /**
   * Replaces the material of `current` (as read) and drops the rotate
   * annotation: every write renews something, which satisfies any request.
   * A 404 counts as a conflict too: the Secret was deleted under us.
   */
  async update(current: StoredSecret, material: Required<SecretMaterial>): Promise<WriteResult> {
    const annotations = { ...current.annotations };
    delete annotations[ROTATE_ANNOTATION];
    const body: V1Secret = {
      ...current.object,
      type: 'kubernetes.io/tls',
      metadata: { ...current.object.metadata, annotations },
      data: { ...current.object.data, ...encode(material) },
    };
    try {
      return stored(await this.#api.replaceNamespacedSecret({ ...this.ref, body }));
    } catch (err) {
      if (err instanceof ApiException && (err.code === 409 || err.code === 404)) return 'conflict';
      throw describeApiError(err, `updating Secret ${this.#show()}`);
    }
  }

  #show(): string {
    return `${this.ref.namespace}/${this.ref.name}`;
  }
}

function encode(material: Required<SecretMaterial>): Record<string, string> {
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  return {
    [SECRET_KEYS.caCert]: b64(material.caCert),
    [SECRET_KEYS.caKey]: b64(material.caKey),
    [SECRET_KEYS.cert]: b64(material.cert),
    [SECRET_KEYS.key]: b64(material.key),
    [SECRET_KEYS.bundle]: b64(material.bundle),
  };
}

function stored(object: V1Secret): StoredSecret {
  const data = object.data ?? {};
  const text = (key: string) => (data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8'));
  const material: SecretMaterial = {};
  const set = (field: keyof SecretMaterial, key: string) => {
    const value = text(key);
    if (value !== undefined) material[field] = value;
  };
  set('caCert', SECRET_KEYS.caCert);
  set('caKey', SECRET_KEYS.caKey);
  set('cert', SECRET_KEYS.cert);
  set('key', SECRET_KEYS.key);
  set('bundle', SECRET_KEYS.bundle);
  return { material, annotations: object.metadata?.annotations ?? {}, object };
}
