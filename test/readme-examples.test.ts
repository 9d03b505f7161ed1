import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { deleteRedisKeys } from './support/services.js';

// Every package README opens with an example; this runs it and checks each
// `console.log(...); // <expected>` line against what was really logged, so the
// first thing a reader tries is true.
const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = join(root, '.cache', 'readme-examples');

function firstTypeScriptBlock(markdown: string): string | undefined {
  return /```ts\n([\s\S]*?)```/.exec(markdown)?.[1];
}

function expectedLogs(code: string): string[] {
  return code
    .split('\n')
    .filter((line) => /^\s*console\.log\(.*\);\s*\/\/ /.test(line))
    .map((line) => line.slice(line.lastIndexOf('// ') + 3).trim());
}

const packages = readdirSync(join(root, 'packages')).filter((name) => {
  try {
    return firstTypeScriptBlock(readFileSync(join(root, 'packages', name, 'README.md'), 'utf8')) !== undefined;
  } catch {
    return false;
  }
});

describe('README examples', () => {
  // Examples that use the registry write under the `dye-example` prefix.
  afterAll(() => deleteRedisKeys('dye-example'));

  it('every package README opens with a TypeScript example', () => {
    expect(packages.length).toBeGreaterThan(0);
    expect(packages.sort()).toEqual(readdirSync(join(root, 'packages')).sort());
  });

  it.each(packages)('packages/%s/README.md runs and logs what it says', async (name) => {
    const code = firstTypeScriptBlock(readFileSync(join(root, 'packages', name, 'README.md'), 'utf8')) as string;
    mkdirSync(scratch, { recursive: true });
    const file = join(scratch, `${name}.ts`);
    writeFileSync(file, code);
    const logged: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      logged.push(args.map((arg) => inspect(arg, { breakLength: Number.POSITIVE_INFINITY, depth: 4 })).join(' '));
    });
    try {
      await import(/* @vite-ignore */ `${file}?t=${Date.now()}`);
    } finally {
      log.mockRestore();
    }
    expect(logged).toEqual(expectedLogs(code));
  });
});
