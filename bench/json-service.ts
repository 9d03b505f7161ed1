import type { ServiceDefinition } from '@grpc/grpc-js';

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString()),
};

/**
 * A JSON-encoded unary method `check` for the gRPC suites: no proto file, the
 * same bytes for every variant. Plain data, so a suite may load grpc-js however
 * it needs to (the OTel suite loads it through require, to be instrumented).
 */
export const jsonInventoryService = {
  check: {
    path: '/bench.Inventory/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
} as unknown as ServiceDefinition;
