import { Command, CommanderError } from 'commander';
import { registerInspectCommand } from './inspect-command.js';
import { registerLoadCommand } from './load-command.js';
import { registerShadowCommands } from './shadow-command.js';
import { registerTokenCommands } from './token-command.js';
import { EXIT, UsageError } from './usage-error.js';
import { registerVerifyCommand } from './verify-command.js';

/** The `dye` command and its subcommands. */
export function createProgram(): Command {
  const program = new Command('dye')
    .description('Dye traffic coloring: tenant tokens, shadow resources, shadow load tests, registry inspection')
    .version('0.1.0')
    .showSuggestionAfterError()
    .exitOverride()
    // Commander's own usage errors, as one line (subcommands inherit this).
    .configureOutput({ outputError: (text, write) => write(`dye: ${text.replace(/^error: /, '').trim()}\n`) });
  registerTokenCommands(program);
  registerShadowCommands(program);
  registerLoadCommand(program);
  registerVerifyCommand(program);
  registerInspectCommand(program);
  // Every subcommand throws instead of exiting, so run() decides the exit code.
  const override = (command: Command) => {
    command.exitOverride();
    for (const sub of command.commands) override(sub);
  };
  override(program);
  return program;
}

/**
 * Runs `dye` with `argv` (without node and script) and returns the exit code:
 * 0 done, 1 the command found a problem (a leak, drift, no answer), 2 bad
 * usage (one clear line on stderr), 3 a load test aborted by its production
 * guard, 4 a load test served in another tenant.
 */
export async function run(argv: readonly string[]): Promise<number> {
  const program = createProgram();
  // Commands report their outcome through process.exitCode; a caller that runs
  // `dye` in its own process keeps its own.
  const callersExitCode = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with code 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`dye: ${error.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`dye: ${(error as Error)?.message ?? String(error)}\n`);
    return EXIT.failed;
  } finally {
    process.exitCode = callersExitCode;
  }
}
