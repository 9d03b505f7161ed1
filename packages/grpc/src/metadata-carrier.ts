import type { TenantSetter } from '@dye/core';
import type { Metadata } from '@grpc/grpc-js';

/** Reads and writes Dye's tenant keys on gRPC metadata (values may be strings or Buffers). */
export const metadataCarrier: TenantSetter<Metadata> = {
  get(metadata, key) {
    const values = metadata.get(key);
    return values.length === 0 ? undefined : values;
  },
  set(metadata, key, value) {
    metadata.set(key, value);
  },
  remove(metadata, key) {
    metadata.remove(key);
  },
};
