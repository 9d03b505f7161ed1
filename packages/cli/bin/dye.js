#!/usr/bin/env node
// The `dye` command. A file of its own, committed, so that npm links it when
// it installs the workspace, before anything is built; the command itself is
// compiled to dist/ (`npm ci` builds it, through the root's prepare script).
try {
  await import('../dist/cli.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli.js')) {
    process.stderr.write('dye: the command is not built yet; run `npm run build` at the repository root\n');
    process.exit(1);
  }
  throw error;
}
