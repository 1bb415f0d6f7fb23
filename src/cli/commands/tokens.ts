import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { cliActor } from '../api-client.js';
import { printJson, withStore, type GlobalOptions } from '../context.js';
import { formatAgo, table } from '../format.js';

/**
 * `imago token create|ls|revoke`: named API tokens with scopes, for CI and people who are not
 * the state folder's owner. Written to the state database directly, as `imago image revoke`
 * is: whoever can write the state folder is its admin. The server reads them on every request.
 */
export function registerTokens(program: Command): void {
  const token = program.command('token').description('named API tokens with scopes: read, deploy:<env>, admin');

  token
    .command('create')
    .description('make a token and print it, once: only its hash is kept')
    .argument('<name>', "the token's name: the ledger's actor for whatever it does")
    .requiredOption('--scope <scope...>', 'read, deploy:<env> (deploy, roll back, promote into, scale and drill that environment) or admin; more than one allowed')
    .option('--json', 'print the token and its record as JSON')
    .action(async (name: string, opts: { scope: string[]; json?: boolean }, cmd: Command) => {
      const { createToken, parseScope } = await import('../../state/tokens.js');
      const scopes = opts.scope.map((text) => {
        const scope = parseScope(text);
        if (typeof scope === 'object') throw new ConfigError(`--scope: ${scope.error}`);
        return scope;
      });
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { token: secret, record } = createToken(store.db, { name, scopes, actor: cliActor() });
        if (opts.json) return printJson({ token: secret, ...record });
        process.stderr.write(`token '${record.name}' (${record.scopes.join(', ')}): shown this once, store it now; clients send it as IMAGO_TOKEN\n`);
        process.stdout.write(`${secret}\n`);
      });
    });

  token
    .command('ls')
    .description('the tokens: names, scopes, who made them and when, revoked or not (never the tokens)')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { listTokens } = await import('../../state/tokens.js');
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const tokens = listTokens(store.db);
        if (opts.json) return printJson(tokens);
        if (tokens.length === 0) return void process.stdout.write('no named token (the state folder\'s api-token is the admin\'s)\n');
        const rows = tokens.map((t) => [t.name, t.scopes.join(','), t.createdBy, formatAgo(t.createdAt), t.revokedAt ? `revoked ${formatAgo(t.revokedAt)}` : 'live']);
        process.stdout.write(`${table(['NAME', 'SCOPES', 'BY', 'CREATED', 'STATE'], rows)}\n`);
      });
    });

  token
    .command('revoke')
    .description('revoke a token: every request with it is refused from now on')
    .argument('<name>', "the token's name")
    .option('--json', 'print its record as JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const { revokeToken } = await import('../../state/tokens.js');
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const record = revokeToken(store.db, name, cliActor());
        if (opts.json) return printJson(record);
        process.stdout.write(`token '${record.name}' revoked\n`);
      });
    });
}
