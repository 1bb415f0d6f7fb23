import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { cliActor } from '../api-client.js';
import { printJson, withStore, type GlobalOptions } from '../context.js';
import { table } from '../format.js';

/**
 * `imago secret set|ls|rm`: each environment's secrets, sealed at rest. Written to the state
 * database directly, as `imago token` is: whoever can write the state folder holds its secrets.
 */
export function registerSecrets(program: Command): void {
  const secret = program.command('secret').description("an environment's secrets: set from standard input, listed by name and version, never shown");

  secret
    .command('set')
    .description('store a new version of a secret, its value read from standard input (one trailing newline is dropped); the next deploy uses it')
    .argument('<env>', 'the environment')
    .argument('<name>', "the secret's name, as a service's secrets name it")
    .option('--json', 'print the new version as JSON')
    .action(async (env: string, name: string, opts: { json?: boolean }, cmd: Command) => {
      const [{ checkEnvironmentName }, { isSecretName, SECRET_NAME }, { setSecret, MAX_SECRET_BYTES }, { secretsKey }] = await Promise.all([
        import('../../config/environments.js'),
        import('../../config/service-schema.js'),
        import('../../state/secrets.js'),
        import('../../secrets/seal.js'),
      ]);
      checkEnvironmentName(env, '<env>');
      if (!isSecretName(name)) throw new ConfigError(`<name>: expected ${SECRET_NAME}, got "${name}"`);
      if (process.stdin.isTTY) process.stderr.write(`the value of ${env}/${name}, then Ctrl-D (it is not echoed anywhere else):\n`);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of process.stdin) {
        size += (chunk as Buffer).length;
        if (size > MAX_SECRET_BYTES + 1) throw new ConfigError(`secret "${name}": more than ${MAX_SECRET_BYTES} bytes on standard input`);
        chunks.push(chunk as Buffer);
      }
      let value = Buffer.concat(chunks);
      if (value.at(-1) === 0x0a) value = value.subarray(0, value.length - (value.at(-2) === 0x0d ? 2 : 1));
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const version = setSecret(store.db, secretsKey(store.home), { env, name, value, actor: cliActor() });
        if (opts.json) return printJson({ env, name, version });
        process.stdout.write(`${env}/${name}: version ${version} stored (the next deploy to ${env} uses it)\n`);
      });
    });

  secret
    .command('ls')
    .description('secrets by environment and name, with their versions (never their values)')
    .argument('[env]', 'only this environment')
    .option('--json', 'print as JSON')
    .action(async (env: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const { listSecrets } = await import('../../state/secrets.js');
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const secrets = listSecrets(store.db, env);
        if (opts.json) return printJson(secrets);
        if (secrets.length === 0) return void process.stdout.write(`no secret${env ? ` in ${env}` : ''}\n`);
        const rows = secrets.map((s) => [s.env, s.name, s.removedAt ? 'removed' : String(s.latest), s.versions.join(',') || '-']);
        process.stdout.write(`${table(['ENV', 'NAME', 'CURRENT', 'KEPT'], rows)}\n`);
      });
    });

  secret
    .command('rm')
    .description('remove a secret: no deploy takes it any more; every version no running release uses is deleted now, the rest once their releases stop running')
    .argument('<env>', 'the environment')
    .argument('<name>', "the secret's name")
    .option('--json', 'print what was deleted as JSON')
    .action(async (env: string, name: string, opts: { json?: boolean }, cmd: Command) => {
      const { removeSecret } = await import('../../state/secrets.js');
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const result = removeSecret(store.db, env, name, cliActor());
        if (opts.json) return printJson({ env, name, ...result });
        process.stdout.write(`${env}/${name} removed: ${result.deleted} version(s) deleted${result.kept ? `, ${result.kept} kept while a running release uses them` : ''}\n`);
      });
    });
}
