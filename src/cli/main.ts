import { Command, CommanderError } from 'commander';
import { ImagoError } from '../errors.js';
import { IMAGO_VERSION } from '../version.js';
import { registerBake } from './commands/bake.js';
import { registerDeploy } from './commands/deploy.js';
import { registerImages } from './commands/images.js';
import { registerLedger } from './commands/ledger.js';
import { registerLogs } from './commands/logs.js';
import { registerServer } from './commands/server.js';
import { registerSecrets } from './commands/secrets.js';
import { registerTokens } from './commands/tokens.js';

/** Builds the `imago` command tree. */
export function buildProgram(): Command {
  const program = new Command('imago')
    .description('immutable infrastructure: bake reproducible images, replace fleets, never change a running server')
    .version(IMAGO_VERSION)
    .option('--home <dir>', 'state directory (default: $IMAGO_HOME or ~/.imago)')
    .option('-c, --config <file>', 'config file (default: imago.config.ts or imago.yaml in the current folder)')
    .option('--verbose', 'print stack traces on errors')
    .showHelpAfterError()
    .exitOverride();
  registerBake(program);
  registerImages(program);
  registerServer(program);
  registerDeploy(program);
  registerLogs(program);
  registerLedger(program);
  registerTokens(program);
  registerSecrets(program);
  return program;
}

/**
 * Runs the CLI with `argv` (without node and script). Returns the exit code: 0 on success,
 * 2 for bad input (config, arguments, unknown references), 1 for other failures.
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    // A command that ran to its end but failed (a deploy whose release failed) set the exit code.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
      return error.exitCode === 0 ? 0 : 2;
    }
    const verbose = argv.includes('--verbose');
    if (error instanceof ImagoError) {
      process.stderr.write(`error: ${error.message}\n`);
      if (verbose) process.stderr.write(`${error.stack ?? ''}\n${error.cause ? `cause: ${String((error.cause as Error).stack ?? error.cause)}\n` : ''}`);
      return error.exitCode;
    }
    const err = error as Error;
    process.stderr.write(`error: ${err.message ?? String(error)}\n`);
    if (verbose) process.stderr.write(`${err.stack ?? ''}\n`);
    else process.stderr.write(`(this is unexpected: run again with --verbose for the stack trace)\n`);
    return 1;
  }
}
