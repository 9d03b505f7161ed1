import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));

// Tests run from source: `@dye/<name>` resolves to packages/<name>/src/index.ts,
// and a subpath a package exports (`@dye/http/fastify`) to its source file, so
// no build step stands between an edit and a test run.
const subpaths = readdirSync(packagesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .flatMap((entry) => {
    const { exports = {} } = JSON.parse(readFileSync(`${packagesDir}${entry.name}/package.json`, 'utf8')) as {
      exports?: Record<string, { default: string }>;
    };
    return Object.entries(exports).map(([subpath, target]) => ({
      find: new RegExp(`^@dye/${entry.name}${subpath === '.' ? '' : subpath.slice(1).replaceAll('/', '\\/')}$`),
      replacement: `${packagesDir}${entry.name}/${target.default.replace('./dist/', 'src/').replace(/\.js$/, '.ts')}`,
    }));
  });
const alias = subpaths;

/**
 * The lowest version of each peer range, next to the newest the repository
 * pins: each peer's adapter tests run again with the client's imports (in
 * sources and tests alike) resolved to the lowest version, installed under an
 * npm alias (`peer-ioredis-lowest` = ioredis 5.4.0). Run after the main
 * project, one group at a time, so no test file runs twice at once.
 *
 * A peer whose newest major needs a newer Node than the suite's lowest gets
 * its own project on the Nodes that can run it (undici 8: Node 22.19 and up).
 */
const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number);
const nodeAtLeast = (major: number, minor: number) => nodeMajor > major || (nodeMajor === major && nodeMinor >= minor);
const PEER_VERSIONS = [
  { peers: { ioredis: 'peer-ioredis-lowest' }, tests: ['ioredis', 'bullmq', 'discovery'] },
  // One run of the HTTP tests for both of its peers' floors.
  { peers: { undici: 'peer-undici-lowest', fastify: 'peer-fastify-lowest' }, tests: ['http'] },
  { peers: { mysql2: 'peer-mysql2-lowest' }, tests: ['mysql2'] },
  { peers: { amqplib: 'peer-amqplib-lowest' }, tests: ['amqplib'] },
  { peers: { bullmq: 'peer-bullmq-lowest' }, tests: ['bullmq'] },
  { peers: { '@grpc/grpc-js': 'peer-grpc-js-lowest' }, tests: ['grpc'] },
  ...(nodeAtLeast(22, 19) ? [{ peers: { undici: 'peer-undici-next' }, tests: ['http'] }] : []),
];
const rootDir = fileURLToPath(new URL('./', import.meta.url));
const installedVersion = (name: string) =>
  (JSON.parse(readFileSync(`${rootDir}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;

export default defineConfig({
  resolve: { alias },
  test: {
    // Brings up Redis, MariaDB and Kafka when they are not reachable; see scripts/infra.mjs.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time, also on two cores (vitest's default there is one):
    // most tests wait on services, timers and child processes, not the CPU.
    maxWorkers: 2,
    projects: [
      {
        extends: true as const,
        test: { name: 'dye', include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'e2e/**/*.test.ts'] },
      },
      ...PEER_VERSIONS.map(({ peers, tests }, index) => ({
        extends: true as const,
        resolve: {
          alias: [
            ...Object.entries(peers).map(([peer, installed]) => ({
              find: new RegExp(`^${peer.replaceAll('/', '\\/')}(/.*)?$`),
              replacement: `${installed}$1`,
            })),
            ...alias,
          ],
        },
        test: {
          name: Object.entries(peers)
            .map(([peer, installed]) => `${peer}@${installedVersion(installed)}`)
            .join(' + '),
          include: tests.map((name) => `packages/${name}/test/**/*.test.ts`),
          sequence: { groupOrder: index + 1 },
        },
      })),
    ],
  },
});
