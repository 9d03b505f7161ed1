#!/usr/bin/env node
import { run } from './program.js';

process.exitCode = await run(process.argv.slice(2));
// Open client handles (a registry's Redis, a Kafka admin) must not hold the command open.
process.exit();
