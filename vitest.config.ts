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

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'e2e/**/*.test.ts'],
    // Brings up Redis, MariaDB and Kafka when they are not reachable; see scripts/infra.mjs.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time, also on two cores (vitest's default there is one):
    // most tests wait on services, timers and child processes, not the CPU.
    maxWorkers: 2,
  },
});
