/**
 * The packages as a team installs them: every package packed with `npm pack`,
 * installed from the tarballs with the newest clients its peer ranges allow
 * into a scratch project outside the workspace, then
 * - each package README's first example compiled with `tsc --strict` (ESM,
 *   `module: nodenext`) and run against the real services, logging what the
 *   README says it logs;
 * - a CommonJS app compiled both ways Dye supports (`module: commonjs`, and
 *   `module: nodenext` in a `"type": "commonjs"` project) and run;
 * - `npx dye` from the installed CLI.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisKeys } from '../test/support/services.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PACKAGES = readdirSync(join(ROOT, 'packages')).sort();
const rootManifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
const manifest = (name: string) =>
  JSON.parse(readFileSync(join(ROOT, 'packages', name, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    peerDependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };

let scratch: string;
const tarballs = new Map<string, string>();

function firstTypeScriptBlock(markdown: string): string | undefined {
  return /```ts\n([\s\S]*?)```/.exec(markdown)?.[1];
}

function expectedLogs(code: string): string[] {
  return code
    .split('\n')
    .filter((line) => /^\s*console\.log\(.*\);\s*\/\/ /.test(line))
    .map((line) => line.slice(line.lastIndexOf('// ') + 3).trim());
}

function run(command: string, args: string[], cwd: string, timeout = 120_000) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  return { code: result.status, out: `${result.stdout}${result.stderr}`, stdout: result.stdout };
}

/** The packages an example imports besides Node's and Dye's own (`express`, `@grpc/proto-loader`). */
function importedPackages(code: string): string[] {
  const names = [...code.matchAll(/from '([^'./][^']*)'/g)].map((match) => match[1] as string);
  return names
    .filter((name) => !name.startsWith('node:') && !name.startsWith('@dye/'))
    .map((name) => (name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : (name.split('/')[0] as string)));
}

/**
 * A project outside the workspace depending on the tarballs, on the newest
 * version each required peer range allows (optional peers only where an
 * example imports them: a type that needs an uninstalled optional peer fails
 * the compile), and on what the README examples import.
 */
function project(dir: string, type: 'module' | 'commonjs'): void {
  mkdirSync(dir, { recursive: true });
  const dependencies: Record<string, string> = {};
  const imported = new Set(
    PACKAGES.flatMap((name) =>
      importedPackages(firstTypeScriptBlock(readFileSync(join(ROOT, 'packages', name, 'README.md'), 'utf8')) ?? ''),
    ),
  );
  for (const name of PACKAGES) {
    const { name: packageName, peerDependencies = {}, peerDependenciesMeta = {} } = manifest(name);
    dependencies[packageName] = `file:${tarballs.get(name)}`;
    for (const [peer, range] of Object.entries(peerDependencies))
      if (!peerDependenciesMeta[peer]?.optional || imported.has(peer)) dependencies[peer] = range;
  }
  for (const extra of imported) {
    const version = rootManifest.devDependencies[extra];
    if (version === undefined) throw new Error(`a README example imports ${extra}, which the repository does not depend on`);
    dependencies[extra] ??= version;
    // Its types, where they come apart (express).
    const types = `@types/${extra.replace('@', '').replace('/', '__')}`;
    if (rootManifest.devDependencies[types]) dependencies[types] = rootManifest.devDependencies[types];
  }
  const devDependencies = {
    typescript: rootManifest.devDependencies.typescript,
    '@types/node': rootManifest.devDependencies['@types/node'],
  };
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `dye-scratch-${type}`, private: true, type, dependencies, devDependencies }, null, 2),
  );
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'dye-packaging-'));
  mkdirSync(join(scratch, 'tarballs'));
  const packed = JSON.parse(
    execFileSync(
      'npm',
      ['pack', '--json', '--pack-destination', join(scratch, 'tarballs'), ...PACKAGES.map((name) => `--workspace=packages/${name}`)],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    ),
  ) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>;
  for (const entry of packed) {
    const short = entry.name.replace('@dye/', '');
    tarballs.set(short, join(scratch, 'tarballs', entry.filename));
    writeFileSync(join(scratch, 'tarballs', `${short}.files.json`), JSON.stringify(entry.files.map((file) => file.path)));
  }
  project(join(scratch, 'esm'), 'module');
  const installed = run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'],
    join(scratch, 'esm'),
    600_000,
  );
  if (installed.code !== 0) throw new Error(`npm install of the tarballs failed:\n${installed.out}`);
}, 660_000);

afterAll(async () => {
  await deleteRedisKeys('dye-example');
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('packed, installed outside the workspace, compiled and run', () => {
  it('every tarball holds its license, readme, compiled code, and the sources its maps point to', () => {
    expect([...tarballs.keys()].sort()).toEqual(PACKAGES);
    for (const name of PACKAGES) {
      const files = new Set(JSON.parse(readFileSync(join(scratch, 'tarballs', `${name}.files.json`), 'utf8')) as string[]);
      for (const required of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'src/index.ts'])
        expect(files.has(required), `${name}: ${required}`).toBe(true);
      const maps = [...files].filter((file) => file.endsWith('.map'));
      expect(maps.length, name).toBeGreaterThan(0);
      for (const map of maps) {
        const { sources } = JSON.parse(readFileSync(join(scratch, 'esm', 'node_modules', '@dye', name, map), 'utf8')) as {
          sources: string[];
        };
        for (const source of sources) {
          const resolved = join(map, '..', source);
          expect(files.has(resolved), `${name}: ${map} points to ${source}`).toBe(true);
        }
      }
      const installedManifest = JSON.parse(readFileSync(join(scratch, 'esm', 'node_modules', '@dye', name, 'package.json'), 'utf8'));
      expect(installedManifest, name).toMatchObject({ license: 'Apache-2.0', repository: expect.any(Object), bugs: expect.any(Object) });
    }
  });

  it('each README example compiles with tsc --strict as ESM and runs, logging what the README says', () => {
    const esm = join(scratch, 'esm');
    mkdirSync(join(esm, 'src'), { recursive: true });
    const examples = PACKAGES.map((name) => {
      const code = firstTypeScriptBlock(readFileSync(join(ROOT, 'packages', name, 'README.md'), 'utf8'));
      expect(code, `packages/${name}/README.md opens with a TypeScript example`).toBeDefined();
      writeFileSync(join(esm, 'src', `${name}.ts`), code as string);
      return { name, code: code as string };
    });
    writeFileSync(
      join(esm, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          target: 'es2022',
          outDir: 'dist',
          rootDir: 'src',
          skipLibCheck: false,
          types: ['node'],
        },
        include: ['src'],
      }),
    );
    const compiled = run(process.execPath, [join(esm, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', esm], esm);
    expect(compiled.out).toBe('');
    expect(compiled.code).toBe(0);
    // What console.log logs, each value inspected on one line as the README writes it, marked apart from other output (a signed token).
    writeFileSync(
      join(esm, 'one-line-logs.mjs'),
      "import { inspect } from 'node:util';\nconsole.log = (...args) => process.stdout.write(`\\u0001${args.map((arg) => inspect(arg, { breakLength: Infinity, depth: 4 })).join(' ')}\\n`);\n",
    );
    for (const { name, code } of examples) {
      const ran = run(process.execPath, ['--import', './one-line-logs.mjs', join('dist', `${name}.js`)], esm);
      expect(ran.code, `${name}: ${ran.out}`).toBe(0);
      const logged = ran.stdout
        .split('\n')
        .filter((line) => line.startsWith('\u0001'))
        .map((line) => line.slice(1));
      expect(logged, name).toEqual(expectedLogs(code));
    }
  }, 300_000);

  it('a CommonJS app compiles and runs with module commonjs and with module nodenext', () => {
    const app = `import { currentTenant, withTenant } from '@dye/core';
import { tenantDispatcher } from '@dye/http';
import { tenantRedis } from '@dye/ioredis';
import { createTenantPool } from '@dye/mysql2';
import { tenantKafka } from '@dye/kafkajs';
import { RedisRegistry } from '@dye/discovery';
import { tenantClientInterceptor } from '@dye/grpc';
import { tenantAmqp } from '@dye/amqplib';
import { tenantQueue } from '@dye/bullmq';
import { startLoad } from '@dye/cli';

const loaded = [tenantDispatcher, tenantRedis, createTenantPool, tenantKafka, RedisRegistry, tenantClientInterceptor, tenantAmqp, tenantQueue, startLoad];
const seen = withTenant('red', () => currentTenant().name);
console.log(JSON.stringify({ seen, loaded: loaded.map((value) => typeof value) }));
`;
    for (const [variant, compilerOptions] of [
      // esModuleInterop: what `tsc --init` sets; Node's own modules are default-imported in Dye's types.
      ['commonjs', { module: 'commonjs', target: 'es2022', esModuleInterop: true }],
      ['nodenext', { module: 'nodenext', target: 'es2022' }],
    ] as const) {
      const dir = join(scratch, `cjs-${variant}`);
      mkdirSync(join(dir, 'src'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `dye-scratch-cjs-${variant}`, private: true, type: 'commonjs' }));
      // The ESM project's installation serves: node_modules is looked up from the parent.
      rmSync(join(dir, 'node_modules'), { force: true, recursive: true });
      execFileSync('ln', ['-s', join(scratch, 'esm', 'node_modules'), join(dir, 'node_modules')]);
      writeFileSync(join(dir, 'src', 'main.ts'), app);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { ...compilerOptions, strict: true, outDir: 'dist', rootDir: 'src', types: ['node'] },
          include: ['src'],
        }),
      );
      const compiled = run(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir);
      expect(compiled.out, variant).toBe('');
      const output = readFileSync(join(dir, 'dist', 'main.js'), 'utf8');
      expect(output, variant).toContain('require("@dye/core")');
      const ran = run(process.execPath, [join('dist', 'main.js')], dir);
      expect(ran.code, `${variant}: ${ran.out}`).toBe(0);
      expect(JSON.parse(ran.stdout), variant).toEqual({ seen: 'red', loaded: Array(9).fill('function') });
    }
  }, 120_000);

  it('npx dye runs from the installed CLI', () => {
    const ran = run('npx', ['--no-install', 'dye', '--version'], join(scratch, 'esm'));
    expect(ran.out.trim()).toBe(manifest('cli').version);
  });
});
