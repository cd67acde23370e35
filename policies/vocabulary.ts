// The closed vocabularies of the API, in one place so the schema, validation,
// allowlist and plans can never disagree about what a word means.

import type { GrpcCode, IoMethod, ToxicType } from './types.ts';

export const MODE_TYPES = ['one', 'all', 'fixed', 'fixed-percent'] as const;
export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export const DIRECTIONS = ['inbound', 'outbound'] as const;
export const STREAMS = ['upstream', 'downstream'] as const;
export const SUBJECT_KINDS = ['User', 'Group', 'ServiceAccount'] as const;

export const TOXIC_TYPES: readonly ToxicType[] = ['latency', 'bandwidth', 'slow_close', 'timeout', 'reset_peer', 'slicer', 'limit_data'];

/** Toxic attributes holding a time: a number in Toxiproxy's unit, or a Go duration. */
export const TOXIC_TIME_ATTRIBUTES = ['latency', 'jitter', 'delay', 'timeout'] as const;
export const TOXIC_ATTRIBUTE_NAMES = ['latency', 'jitter', 'rate', 'delay', 'timeout', 'average_size', 'size_variation', 'bytes'] as const;
export type ToxicAttributeName = (typeof TOXIC_ATTRIBUTE_NAMES)[number];

/**
 * Each toxic's attributes as Toxiproxy defines them (toxics/*.go), which are
 * required here (Toxiproxy would silently default them to 0), and the unit of
 * each: Toxiproxy counts slicer's delay in microseconds, every other time in ms.
 */
export const TOXIC_ATTRIBUTES: Readonly<Record<ToxicType, { required: readonly ToxicAttributeName[]; optional: readonly ToxicAttributeName[]; timeUnitMs: number }>> = {
  latency: { required: ['latency'], optional: ['jitter'], timeUnitMs: 1 },
  bandwidth: { required: ['rate'], optional: [], timeUnitMs: 1 },
  slow_close: { required: ['delay'], optional: [], timeUnitMs: 1 },
  timeout: { required: ['timeout'], optional: [], timeUnitMs: 1 },
  reset_peer: { required: [], optional: ['timeout'], timeUnitMs: 1 },
  slicer: { required: ['average_size'], optional: ['size_variation', 'delay'], timeUnitMs: 0.001 },
  limit_data: { required: ['bytes'], optional: [], timeUnitMs: 1 },
};

/** gRPC status names; a name's index is its code (CANCELLED = 1 … UNAUTHENTICATED = 16). */
export const GRPC_CODES: readonly GrpcCode[] = [
  'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];
export const grpcCodeNumber = (name: GrpcCode): number => GRPC_CODES.indexOf(name) + 1;

export const IO_METHODS: readonly IoMethod[] = ['read', 'write', 'open', 'getattr', 'readdir', 'create', 'unlink', 'mkdir', 'rename', 'truncate', 'fsync'];

/** errno names an IO fault may return: the ones applications meet on real disks. */
export const ERRNO_NAMES = [
  'EIO', 'ENOSPC', 'EACCES', 'EPERM', 'ENOENT', 'EROFS', 'EAGAIN', 'EBUSY', 'EINTR', 'ENOMEM',
  'EDQUOT', 'ETIMEDOUT', 'EEXIST', 'EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EMFILE', 'ENFILE', 'EFBIG',
  'ENXIO', 'ENODEV', 'ESTALE', 'EBADF', 'EINVAL', 'ENAMETOOLONG', 'ENOTSUP', 'ECONNRESET',
] as const;

export const NETWORK_FAULTS = ['delay', 'loss', 'duplicate', 'corrupt', 'reorder', 'rate'] as const;

/** A network interface name as Linux allows it in practice (1-15 of A-Z a-z 0-9 _ . -). */
export const DEVICE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

export const FAULT_FAMILIES = ['http', 'grpc', 'tcp', 'network', 'io', 'time'] as const;
export type FaultFamily = (typeof FAULT_FAMILIES)[number];

/** Families the init program applies from a privileged container; a tenant must opt in. */
export const PRIVILEGED_FAMILIES: readonly FaultFamily[] = ['network', 'io', 'time'];

/** Every fault kind a tenant allowlist can name, in a stable order. */
export const FAULT_KINDS: readonly string[] = [
  'http.delay',
  'http.abort',
  'grpc.delay',
  'grpc.abort',
  ...TOXIC_TYPES.map((t) => `tcp.${t}`),
  ...NETWORK_FAULTS.map((n) => `network.${n}`),
  'io.error',
  'io.delay',
  'time.offset',
];

export function familyOf(kind: string): FaultFamily {
  return kind.slice(0, kind.indexOf('.')) as FaultFamily;
}
