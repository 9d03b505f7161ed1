#!/usr/bin/env node
// Makes Redis, MariaDB/MySQL and Apache Kafka reachable on 127.0.0.1 for tests
// and local development:
//
//   node scripts/infra.mjs up | down | status
//
// `up` uses a service that already answers; else `docker compose up -d --wait`
// when a Docker engine answers; else starts what this machine has: redis-server,
// mariadbd, and a Kafka broker assembled from Maven Central (scripts/kafka/pom.xml).
// `down` stops only what `up` started (pid files under .cache/infra).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STATE_DIR = join(ROOT, '.cache', 'infra');
const KAFKA_DIR = join(ROOT, '.cache', 'kafka');
const KAFKA_LIBS = join(KAFKA_DIR, 'libs');
const KAFKA_POM = join(ROOT, 'scripts', 'kafka', 'pom.xml');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');

const HOST = '127.0.0.1';

/** The services every test run needs, by name. */
export const SERVICES = {
  redis: { port: 6379, compose: 'redis' },
  mysql: { port: 3306, compose: 'mariadb' },
  kafka: { port: 9092, compose: 'kafka' },
  rabbitmq: { port: 5672, compose: 'rabbitmq' },
  etcd: { port: 2379, compose: 'etcd' },
};

/** RabbitMQ's management API (the rabbitmq_management plugin): topology and permissions are read and written there. */
export const RABBITMQ_MANAGEMENT_PORT = 15672;

const KAFKA_START_TIMEOUT_MS = 90_000;
const SERVICE_START_TIMEOUT_MS = 30_000;

function log(message) {
  process.stderr.write(`[infra] ${message}\n`);
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
export function isPortOpen(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const done = (open) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Resolves true when a Kafka admin call answers on 127.0.0.1:port. */
async function kafkaAnswers(port = SERVICES.kafka.port, sasl = undefined) {
  if (!(await isPortOpen(port))) return false;
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({
    clientId: 'dye-infra',
    brokers: [`${HOST}:${port}`],
    ...(sasl ? { sasl: { mechanism: 'plain', username: sasl.superUser, password: sasl.users[sasl.superUser] } } : {}),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** True when RabbitMQ takes AMQP connections and its management API answers (guest/guest). */
async function rabbitMqAnswers() {
  if (!(await isPortOpen(SERVICES.rabbitmq.port))) return false;
  return managementAnswers();
}

async function managementAnswers() {
  try {
    const response = await fetch(`http://${HOST}:${RABBITMQ_MANAGEMENT_PORT}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      signal: AbortSignal.timeout(2000),
    });
    return response.ok;
  } catch {
    return false;
  }
}

/** True when etcd's client port says it is healthy (a member with a leader). */
export async function etcdAnswers(port = SERVICES.etcd.port) {
  try {
    const response = await fetch(`http://${HOST}:${port}/health`, { signal: AbortSignal.timeout(2000) });
    return response.ok && (await response.json()).health === 'true';
  } catch {
    return false;
  }
}

async function answers(name) {
  if (name === 'kafka') return kafkaAnswers();
  if (name === 'rabbitmq') return rabbitMqAnswers();
  if (name === 'etcd') return etcdAnswers();
  return isPortOpen(SERVICES[name].port);
}

async function waitFor(what, check, timeoutMs, onTimeout) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} did not answer within ${timeoutMs / 1000}s${onTimeout ? `: ${onTimeout()}` : ''}`);
}

function which(command) {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

function findExecutable(name, candidates) {
  return which(name) ?? candidates.find((candidate) => existsSync(candidate));
}

// --- pid files: `down` stops only what `up` started ---------------------------

function pidFile(name) {
  return join(STATE_DIR, `${name}.pid`);
}

function readPid(name) {
  try {
    const pid = Number.parseInt(readFileSync(pidFile(name), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and still the program we started (pids get reused). */
function isOurs(pid, marker) {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

const MARKERS = { redis: 'redis-server', mysql: 'mariadbd', kafka: 'kafka.Kafka', etcd: 'etcd' };

async function stopPid(name) {
  const pid = readPid(name);
  rmSync(pidFile(name), { force: true });
  if (pid === undefined || !isOurs(pid, MARKERS[name])) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && isOurs(pid, MARKERS[name])) await new Promise((r) => setTimeout(r, 200));
  if (isOurs(pid, MARKERS[name])) process.kill(pid, 'SIGKILL');
  return true;
}

// --- Docker -------------------------------------------------------------------

function composeCommand() {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  if (which('docker-compose')) return ['docker-compose'];
  return undefined;
}

function dockerEngineAnswers() {
  if (!which('docker')) return false;
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

async function upWithDocker(missing) {
  const compose = composeCommand();
  if (!compose) return false;
  const services = missing.map((name) => SERVICES[name].compose);
  log(`starting ${services.join(', ')} with ${compose.join(' ')}`);
  const [command, ...args] = compose;
  const result = spawnSync(command, [...args, '-f', COMPOSE_FILE, 'up', '-d', '--wait', ...services], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${compose.join(' ')} up failed (exit ${result.status})`);
  mkdirSync(STATE_DIR, { recursive: true });
  writeFileSync(join(STATE_DIR, 'compose.services'), services.join('\n'));
  return true;
}

// --- Redis and MariaDB installed on this machine --------------------------------

async function startRedis() {
  const server = findExecutable('redis-server', ['/usr/bin/redis-server', '/usr/local/bin/redis-server']);
  if (!server)
    throw new Error(
      'Redis is not reachable on 127.0.0.1:6379 and redis-server is not installed (apt-get install redis-server, or use Docker)',
    );
  const dir = join(STATE_DIR, 'redis');
  mkdirSync(dir, { recursive: true });
  log('starting redis-server');
  const args = ['--daemonize', 'yes', '--bind', HOST, '--port', String(SERVICES.redis.port), '--save', '', '--appendonly', 'no'];
  args.push('--dir', dir, '--pidfile', pidFile('redis'), '--logfile', join(dir, 'redis.log'));
  const result = spawnSync(server, args, { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`redis-server failed to start (exit ${result.status}); see ${join(dir, 'redis.log')}`);
  await waitFor(
    'Redis',
    () => isPortOpen(SERVICES.redis.port),
    SERVICE_START_TIMEOUT_MS,
    () => `see ${join(dir, 'redis.log')}`,
  );
}

async function startMariaDb() {
  const server = findExecutable('mariadbd', ['/usr/sbin/mariadbd', '/usr/sbin/mysqld']);
  if (!server)
    throw new Error(
      'MariaDB/MySQL is not reachable on 127.0.0.1:3306 and mariadbd is not installed (apt-get install mariadb-server, or use Docker)',
    );
  mkdirSync(STATE_DIR, { recursive: true });
  const logFile = join(STATE_DIR, 'mariadb.log');
  log(`starting ${server} with its system configuration`);
  // The system configuration names the data directory and the server's own pid
  // file; ours records the pid we spawned. Running as root needs --user, and the
  // socket directory is normally made by the service manager.
  const args = ['--bind-address=127.0.0.1', `--port=${SERVICES.mysql.port}`];
  if (process.getuid?.() === 0) {
    args.push('--user=mysql');
    spawnSync('install', ['-d', '-o', 'mysql', '-g', 'mysql', '/run/mysqld'], { stdio: 'ignore' });
  }
  const out = openSync(logFile, 'a');
  const child = spawn(server, args, { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  writeFileSync(pidFile('mysql'), String(child.pid));
  await waitFor(
    'MariaDB',
    () => isPortOpen(SERVICES.mysql.port),
    SERVICE_START_TIMEOUT_MS,
    () => `see ${logFile}`,
  );
}

// --- Kafka from Maven Central -----------------------------------------------------

function pomHash() {
  return createHash('sha256').update(readFileSync(KAFKA_POM)).digest('hex');
}

/** Copies the broker's jars into .cache/kafka/libs once per pom version. */
async function ensureKafkaLibs() {
  const stamp = join(KAFKA_DIR, 'libs.sha256');
  const wanted = pomHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  const mvn = which('mvn');
  if (!mvn) throw new Error('Kafka is not reachable on 127.0.0.1:9092 and Maven (mvn) is not installed to assemble it');
  log('assembling Apache Kafka from Maven Central (first run only)');
  rmSync(KAFKA_LIBS, { recursive: true, force: true });
  mkdirSync(KAFKA_LIBS, { recursive: true });
  try {
    await execFileAsync(
      mvn,
      ['-q', '-B', '-f', KAFKA_POM, 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${KAFKA_LIBS}`],
      { maxBuffer: 64 * 1024 * 1024 },
    );
  } catch (error) {
    throw new Error(`mvn dependency:copy-dependencies failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  }
  writeFileSync(stamp, wanted);
}

/**
 * With `sasl`, clients authenticate with SASL/PLAIN as one of `sasl.users`
 * (name → password) and the broker's own StandardAuthorizer enforces ACLs:
 * `sasl.superUser` may do anything, everyone else only what an ACL allows.
 * The controller listener stays PLAINTEXT on loopback; its principal
 * (ANONYMOUS) is a super user so the node can talk to itself.
 */
function kafkaListenerProperties(port, controllerPort, sasl) {
  if (!sasl)
    return `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
`;
  const quote = (text) => JSON.stringify(String(text));
  const users = Object.entries(sasl.users)
    .map(([name, password]) => `user_${name}=${quote(password)}`)
    .join(' ');
  return `listeners=SASL_PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=${quote(sasl.superUser)} password=${quote(sasl.users[sasl.superUser])} ${users};
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:${sasl.superUser};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
`;
}

function kafkaServerProperties(dataDir, port, controllerPort, sasl) {
  return `# Written by scripts/infra.mjs: one node that is its own controller, for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controllerPort}
${kafkaListenerProperties(port, controllerPort, sasl)}log.dirs=${dataDir}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
`;
}

const KAFKA_LOG4J = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
`;

/**
 * A KRaft cluster id: 16 random bytes, base64url without padding. Like
 * Kafka's own Uuid.randomUuid, never one that starts with '-': the storage
 * tool's argument parser would read it as an option (1 run in 64).
 */
function kafkaClusterId() {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Formats (when `fresh`) and starts a single-node broker whose files live in
 * `runDir`; resolves with the child once a kafkajs admin call answers.
 */
async function launchKafkaBroker({ runDir, port, controllerPort, fresh, detached, sasl }) {
  const java = which('java');
  if (!java) throw new Error(`Kafka is not reachable on 127.0.0.1:${port} and java is not installed (OpenJDK 17+ is needed)`);
  await ensureKafkaLibs();
  const dataDir = join(runDir, 'data');
  const logFile = join(runDir, 'kafka.log');
  const properties = join(runDir, 'server.properties');
  const log4j = join(runDir, 'log4j.properties');
  const classpath = `${KAFKA_LIBS}/*`;
  const jvm = ['-Xms256m', '-Xmx1g', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath];
  if (fresh) {
    // A fresh log dir: tests create and drop topics freely, and a broker that
    // starts empty never trips over a half-written earlier run.
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(properties, kafkaServerProperties(dataDir, port, controllerPort, sasl));
    writeFileSync(log4j, KAFKA_LOG4J);
    log('formatting a fresh KRaft log dir');
    const format = spawnSync(java, [...jvm, 'kafka.tools.StorageTool', 'format', '-t', kafkaClusterId(), '-c', properties], {
      encoding: 'utf8',
    });
    writeFileSync(logFile, `${format.stdout ?? ''}${format.stderr ?? ''}`);
    if (format.status !== 0) {
      const tail = `${format.stdout ?? ''}${format.stderr ?? ''}`.trim().split('\n').slice(-5).join('\n');
      throw new Error(`kafka.tools.StorageTool format failed (exit ${format.status}, signal ${format.signal}); see ${logFile}:\n${tail}`);
    }
  }
  log(`starting Kafka on 127.0.0.1:${port} (log: ${logFile})`);
  const out = openSync(logFile, 'a');
  const child = spawn(java, [...jvm, 'kafka.Kafka', properties], { detached, stdio: ['ignore', out, out] });
  if (detached) child.unref();
  await waitFor(
    'Kafka',
    () => kafkaAnswers(port, sasl),
    KAFKA_START_TIMEOUT_MS,
    () => {
      const alive = isOurs(child.pid, MARKERS.kafka);
      return `${alive ? 'the broker is still starting' : 'the broker exited'}; see ${logFile}`;
    },
  );
  return child;
}

async function startKafka() {
  mkdirSync(STATE_DIR, { recursive: true });
  const child = await launchKafkaBroker({
    runDir: join(KAFKA_DIR, 'run'),
    port: SERVICES.kafka.port,
    controllerPort: SERVICES.kafka.port + 1,
    fresh: true,
    detached: true,
  });
  writeFileSync(pidFile('kafka'), String(child.pid));
}

/**
 * A broker of a test's own, on other ports and in its own directory, which the
 * test can kill and start again with its data (broker restart tests).
 */
export async function startKafkaBroker({ port, controllerPort, runDir, sasl }) {
  let child = await launchKafkaBroker({ runDir, port, controllerPort, fresh: true, detached: false, sasl });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    stop,
    async restart() {
      await stop();
      child = await launchKafkaBroker({ runDir, port, controllerPort, fresh: false, detached: false, sasl });
    },
    async destroy() {
      await stop();
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

// --- RabbitMQ installed on this machine ----------------------------------------------

/**
 * Starts Debian's rabbitmq-server when it is installed but stopped, and turns
 * on its management plugin (the API `syncShadowTopology` and
 * `grantShadowAccess` use). The server daemonizes itself, so `down` stops it
 * with rabbitmqctl, and only when `up` started it.
 */
async function startRabbitMq() {
  const server = findExecutable('rabbitmq-server', ['/usr/sbin/rabbitmq-server', '/usr/lib/rabbitmq/bin/rabbitmq-server']);
  if (!server)
    throw new Error(
      'RabbitMQ is not reachable on 127.0.0.1:5672 and rabbitmq-server is not installed (apt-get install rabbitmq-server, or use Docker)',
    );
  if (!(await isPortOpen(SERVICES.rabbitmq.port))) {
    log('starting rabbitmq-server');
    const result = spawnSync(server, ['-detached'], { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`rabbitmq-server failed to start (exit ${result.status}); see /var/log/rabbitmq`);
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(join(STATE_DIR, 'rabbitmq.started'), '');
    await waitFor(
      'RabbitMQ',
      () => isPortOpen(SERVICES.rabbitmq.port),
      SERVICE_START_TIMEOUT_MS * 2,
      () => 'see /var/log/rabbitmq',
    );
  }
  if (!(await managementAnswers())) {
    log('enabling rabbitmq_management');
    const plugins = findExecutable('rabbitmq-plugins', ['/usr/sbin/rabbitmq-plugins', '/usr/lib/rabbitmq/bin/rabbitmq-plugins']);
    const result = plugins ? spawnSync(plugins, ['enable', 'rabbitmq_management'], { stdio: 'inherit', timeout: 120_000 }) : undefined;
    if (result?.status !== 0) throw new Error('rabbitmq-plugins enable rabbitmq_management failed; enable it by hand');
    await waitFor('the RabbitMQ management API', managementAnswers, SERVICE_START_TIMEOUT_MS);
  }
}

async function stopRabbitMq() {
  const marker = join(STATE_DIR, 'rabbitmq.started');
  if (!existsSync(marker)) return false;
  rmSync(marker, { force: true });
  const ctl = findExecutable('rabbitmqctl', ['/usr/sbin/rabbitmqctl']);
  if (ctl) spawnSync(ctl, ['stop'], { stdio: 'inherit', timeout: 60_000 });
  return true;
}

// --- etcd from Debian's etcd-server ----------------------------------------------

/**
 * The executable `name` at one of `candidates`, installing the Debian package
 * `debianPackage` when it is missing and this is a root shell with apt-get
 * (updating the package lists once if the first attempt fails).
 */
function debianExecutable(name, candidates, debianPackage) {
  const found = findExecutable(name, candidates);
  if (found) return found;
  if (process.getuid?.() === 0 && which('apt-get')) {
    log(`installing ${debianPackage} (apt-get)`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', debianPackage], { stdio: 'inherit', env });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
      install();
    }
    return findExecutable(name, candidates);
  }
  return undefined;
}

/** The etcd binary, installing Debian's etcd-server when it is missing and this is a root shell with apt-get. */
export function etcdBinary() {
  const binary = debianExecutable('etcd', ['/usr/bin/etcd', '/usr/local/bin/etcd'], 'etcd-server');
  if (binary) return binary;
  throw new Error('etcd is not reachable on 127.0.0.1:2379 and etcd is not installed (apt-get install etcd-server, or use Docker)');
}

/**
 * Headless Chromium for tests that render pages (the load report): Debian's
 * `chromium`, installed when missing and this is a root shell with apt-get.
 */
export function chromiumBinary() {
  const binary = debianExecutable('chromium', ['/usr/bin/chromium', '/usr/bin/chromium-browser'], 'chromium');
  if (binary) return binary;
  throw new Error('chromium is not installed (apt-get install chromium)');
}

/** The arguments of a one-member etcd on loopback ports, its data in `dataDir`. */
export function etcdArgs(dataDir, clientPort, peerPort) {
  const client = `http://${HOST}:${clientPort}`;
  const peer = `http://${HOST}:${peerPort}`;
  return [
    '--name',
    'dye',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `dye=${peer}`,
  ];
}

async function startEtcd() {
  const server = etcdBinary();
  const dir = join(STATE_DIR, 'etcd');
  mkdirSync(dir, { recursive: true });
  const logFile = join(STATE_DIR, 'etcd.log');
  log('starting etcd');
  const out = openSync(logFile, 'a');
  const child = spawn(server, etcdArgs(join(dir, 'data'), SERVICES.etcd.port, SERVICES.etcd.port + 1), {
    detached: true,
    stdio: ['ignore', out, out],
  });
  child.unref();
  writeFileSync(pidFile('etcd'), String(child.pid));
  await waitFor(
    'etcd',
    () => etcdAnswers(),
    SERVICE_START_TIMEOUT_MS,
    () => `see ${logFile}`,
  );
}

const LOCAL_STARTERS = { redis: startRedis, mysql: startMariaDb, kafka: startKafka, rabbitmq: startRabbitMq, etcd: startEtcd };

// --- commands -------------------------------------------------------------------

/** Makes every service reachable; a no-op when they already are. */
export async function up() {
  const states = await Promise.all(Object.keys(SERVICES).map(async (name) => [name, await answers(name)]));
  let missing = states.filter(([, ok]) => !ok).map(([name]) => name);
  if (missing.length === 0) return;
  // A broker whose port is open but whose admin API does not answer yet is
  // starting (another `up`, a compose run): wait for it rather than start a second.
  if (missing.includes('kafka') && (await isPortOpen(SERVICES.kafka.port))) {
    await waitFor('Kafka (port open, starting)', kafkaAnswers, KAFKA_START_TIMEOUT_MS);
    missing = missing.filter((name) => name !== 'kafka');
    if (missing.length === 0) return;
  }
  if (dockerEngineAnswers() && (await upWithDocker(missing))) {
    for (const name of missing) await waitFor(name, () => answers(name), SERVICE_START_TIMEOUT_MS);
    return;
  }
  // One at a time: Kafka's JVM and MariaDB starting together on two cores is
  // slower than in turn.
  for (const name of missing) await LOCAL_STARTERS[name]();
}

/** Stops what `up` started, and nothing else. */
export async function down(names = Object.keys(SERVICES)) {
  for (const name of names) {
    if (await (name === 'rabbitmq' ? stopRabbitMq() : stopPid(name))) log(`stopped ${name}`);
  }
  const composeState = join(STATE_DIR, 'compose.services');
  if (existsSync(composeState)) {
    const compose = composeCommand();
    if (compose) {
      const [command, ...args] = compose;
      spawnSync(command, [...args, '-f', COMPOSE_FILE, 'down'], { stdio: 'inherit' });
    }
    rmSync(composeState, { force: true });
  }
}

/** One line per service: reachable or not, and whether `up` started it. */
export async function status() {
  const lines = [];
  for (const [name, { port }] of Object.entries(SERVICES)) {
    const reachable = await answers(name);
    const pid = readPid(name);
    const owner =
      name === 'rabbitmq'
        ? existsSync(join(STATE_DIR, 'rabbitmq.started'))
          ? 'started by infra'
          : 'not started by infra'
        : pid !== undefined && isOurs(pid, MARKERS[name])
          ? `started by infra (pid ${pid})`
          : 'not started by infra';
    lines.push(`${name.padEnd(8)} 127.0.0.1:${port}  ${reachable ? 'up  ' : 'down'}  ${owner}`);
  }
  return lines.join('\n');
}

async function main(command) {
  switch (command) {
    case 'up':
      await up();
      process.stdout.write(`${await status()}\n`);
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status':
      process.stdout.write(`${await status()}\n`);
      return 0;
    default:
      process.stderr.write('usage: node scripts/infra.mjs up|down|status\n');
      return 2;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv[2]).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`[infra] ${error.message}\n`);
      process.exit(1);
    },
  );
}
