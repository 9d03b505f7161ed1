#!/usr/bin/env node
// Validates docker-compose.yml without a Docker engine: `docker compose config -q`
// (the Compose plugin) or `docker-compose config -q` (Debian's docker-compose
// package, installed here on Debian when neither exists and we are root).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const composeFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'docker-compose.yml');

function has(command, args) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function composeCommand() {
  if (has('docker', ['compose', 'version'])) return ['docker', 'compose'];
  if (has('docker-compose', ['version'])) return ['docker-compose'];
  return undefined;
}

let compose = composeCommand();
if (!compose && process.getuid?.() === 0 && has('apt-get', ['--version'])) {
  process.stderr.write('[compose-check] installing docker-compose from Debian packages\n');
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  spawnSync('apt-get', ['install', '-y', '-qq', 'docker-compose'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  compose = composeCommand();
}
if (!compose) {
  process.stderr.write('[compose-check] neither `docker compose` nor `docker-compose` is available to validate docker-compose.yml\n');
  process.exit(1);
}
const [command, ...args] = compose;
const result = spawnSync(command, [...args, '-f', composeFile, 'config', '-q'], { stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write(`[compose-check] docker-compose.yml is invalid (${compose.join(' ')} config -q exited ${result.status})\n`);
  process.exit(1);
}
process.stderr.write(`[compose-check] docker-compose.yml is valid (${compose.join(' ')})\n`);
