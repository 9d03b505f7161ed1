export declare const SERVICES: Record<'redis' | 'mysql' | 'kafka' | 'rabbitmq' | 'etcd', { port: number; compose: string }>;
export declare function isPortOpen(port: number, timeoutMs?: number): Promise<boolean>;
export declare function up(): Promise<void>;
/** Stops what `up` started (all services, or the ones named); leaves the rest alone. */
export declare function down(names?: ReadonlyArray<keyof typeof SERVICES>): Promise<void>;
export declare function status(): Promise<string>;
export interface OwnKafkaBroker {
  readonly port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  destroy(): Promise<void>;
}
/** SASL/PLAIN users (name → password) and the one that may do anything; the others only what ACLs allow. */
export interface KafkaSasl {
  users: Record<string, string>;
  superUser: string;
}
export declare function startKafkaBroker(options: {
  port: number;
  controllerPort: number;
  runDir: string;
  sasl?: KafkaSasl;
}): Promise<OwnKafkaBroker>;
/** True when etcd on 127.0.0.1:port says it is healthy. */
export declare function etcdAnswers(port?: number): Promise<boolean>;
/** The etcd binary (installing Debian's etcd-server when missing, as root with apt-get); throws when there is none. */
export declare function etcdBinary(): string;
/** Arguments of a one-member etcd on loopback ports. */
export declare function etcdArgs(dataDir: string, clientPort: number, peerPort: number): string[];
/** Headless Chromium's binary (installing Debian's chromium when missing, as root with apt-get); throws when there is none. */
export declare function chromiumBinary(): string;
