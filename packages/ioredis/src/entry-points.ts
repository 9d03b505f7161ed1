import { list as commandList } from '@ioredis/commands';
import type { Cluster, Redis } from 'ioredis';

/**
 * What a method of an ioredis client does when an isolated tenant calls it
 * through `tenantRedis`:
 * - `command`: builds commands and sends them through `sendCommand`, so it runs
 *   on the tenant's planned connection (every key renamed, or refused);
 * - `pipeline`: builds a pipeline or transaction bound to the tenant;
 * - `duplicate`: a new client, wrapped the same way;
 * - `lifecycle`: connects or closes the client and its isolated connections;
 * - `define`: adds a command (script, builtin) to the client and its isolated connections;
 * - `listen` / `unlisten` / `listeners`: event listeners, each run in and
 *   seen by the tenant that registered it (isolated tenants: their own only);
 * - `inspect`: reads local state and sends nothing;
 * - `refuse`: reaches a raw connection (`monitor`, a cluster's `nodes`),
 *   production's listeners (`emit`) or ioredis's internal machinery.
 * `lifecycle` and `define` change the client every tenant shares: baseline only.
 * A method not classified here is refused: a future ioredis method is closed until it is looked at.
 */
export type EntryPoint =
  | 'command'
  | 'pipeline'
  | 'duplicate'
  | 'lifecycle'
  | 'define'
  | 'listen'
  | 'unlisten'
  | 'listeners'
  | 'inspect'
  | 'refuse';

/**
 * The command methods of a client: its own ioredis's builtins (a newer ioredis
 * brings commands this package's table may not know; they are still commands,
 * planned and refused like any other), with their Buffer forms.
 */
const commandNamesByClass = new WeakMap<object, ReadonlySet<string>>();
function commandNamesOf(client: Redis | Cluster): ReadonlySet<string> {
  const prototype = Object.getPrototypeOf(client) as object;
  let names = commandNamesByClass.get(prototype);
  if (!names) {
    const builtins = typeof client.getBuiltinCommands === 'function' ? client.getBuiltinCommands() : [];
    names = new Set([...commandList, ...builtins, 'sentinel'].flatMap((name) => [name, `${name}Buffer`]));
    commandNamesByClass.set(prototype, names);
  }
  return names;
}

const FIXED: ReadonlyMap<string, EntryPoint> = new Map(
  Object.entries({
    call: 'command',
    callBuffer: 'command',
    send_command: 'command',
    sendCommand: 'command',
    scanStream: 'command',
    scanBufferStream: 'command',
    sscanStream: 'command',
    sscanBufferStream: 'command',
    hscanStream: 'command',
    hscanBufferStream: 'command',
    zscanStream: 'command',
    zscanBufferStream: 'command',
    createScanStream: 'command',
    pipeline: 'pipeline',
    multi: 'pipeline',
    duplicate: 'duplicate',
    connect: 'lifecycle',
    disconnect: 'lifecycle',
    end: 'lifecycle',
    quit: 'lifecycle',
    quitBuffer: 'lifecycle',
    defineCommand: 'define',
    addBuiltinCommand: 'define',
    on: 'listen',
    addListener: 'listen',
    once: 'listen',
    prependListener: 'listen',
    prependOnceListener: 'listen',
    off: 'unlisten',
    removeListener: 'unlisten',
    removeAllListeners: 'unlisten',
    ['constructor' as string]: 'inspect',
    getBuiltinCommands: 'inspect',
    createBuiltinCommand: 'inspect',
    mode: 'inspect',
    autoPipelineQueueSize: 'inspect',
    emit: 'refuse',
    listeners: 'listeners',
    rawListeners: 'listeners',
    listenerCount: 'listeners',
    eventNames: 'listeners',
    setMaxListeners: 'refuse',
    getMaxListeners: 'inspect',
    getBlockingTimeoutInMs: 'refuse',
    getConfiguredBlockingTimeout: 'refuse',
    _getServerAddress: 'refuse',
    _buildCommandContext: 'refuse',
    _buildBatchContext: 'refuse',
    _getDescription: 'refuse',
    delayUntilReady: 'refuse',
    natMapper: 'refuse',
    monitor: 'refuse',
    nodes: 'refuse',
    _connect: 'refuse',
    parseOptions: 'refuse',
    setSocketTimeout: 'refuse',
    silentEmit: 'refuse',
    recoverFromFatalError: 'refuse',
    handleReconnection: 'refuse',
    resetCommandQueue: 'refuse',
    resetOfflineQueue: 'refuse',
    setStatus: 'refuse',
    flushQueue: 'refuse',
    _readyCheck: 'refuse',
    refreshSlotsCache: 'refuse',
    handleError: 'refuse',
    clearNodesRefreshInterval: 'refuse',
    resetNodesRefreshInterval: 'refuse',
    handleCloseEvent: 'refuse',
    executeOfflineCommands: 'refuse',
    getInfoFromNode: 'refuse',
    invokeReadyDelayedCallbacks: 'refuse',
    readyCheck: 'refuse',
    resolveSrv: 'refuse',
    dnsLookup: 'refuse',
    resolveStartupNodeHostnames: 'refuse',
    createShardedSubscriberGroup: 'refuse',
  } satisfies Record<string, EntryPoint>),
) as ReadonlyMap<string, EntryPoint>;

/** How an isolated tenant's call of `property` on `client` is served (undefined: not classified, refused). */
export function entryPointOf(client: Redis | Cluster, property: string): EntryPoint | undefined {
  const fixed = FIXED.get(property);
  if (fixed) return fixed;
  if (commandNamesOf(client).has(property)) return 'command';
  // Scripts of defineCommand and commands of addBuiltinCommand, on this client.
  const base = property.endsWith('Buffer') ? property.slice(0, -'Buffer'.length) : property;
  const { scriptsSet, addedBuiltinSet } = client as unknown as { scriptsSet?: object; addedBuiltinSet?: Set<string> };
  if ((scriptsSet && Object.hasOwn(scriptsSet, base)) || addedBuiltinSet?.has(base)) return 'command';
  return undefined;
}
