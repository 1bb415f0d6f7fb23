import type { Command } from 'commander';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { parseByteSize } from '../../config/byte-size.js';
import { parseDuration } from '../../config/duration.js';
import { ConfigError } from '../../errors.js';
import { resolveHome } from '../../store/home.js';
import { serverFile } from '../api-client.js';
import type { GlobalOptions } from '../context.js';

/** `imago server`: runs the control plane in the foreground until SIGINT/SIGTERM. */
export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run the control plane (API, routers, deploys) in the foreground')
    .option('--listen <host:port>', 'API address (loopback only)', '127.0.0.1:7420')
    .option('--env <name>', "the home environment: its services keep their bare names, and requests that name no environment go to it (fixed for a state folder)", 'default')
    .option('--data-plane <kind>', 'what serves the services: auto (haproxy when installed, else builtin), haproxy, builtin, or in-process (dies with the server)', 'auto')
    .option('--stop-routers', 'on exit, stop the routers too (by default they keep serving, and the next server adopts them)')
    .option('--logs-max-age <duration>', "how long the log store keeps instances' lines", '7d')
    .option('--logs-max-size <size>', "how much the log store keeps (the oldest lines go first)", '1GiB')
    .option('--syslog <url>', "forward every instance's lines to a syslog server: tcp://host:port, or tls://host:port (RFC 5424, octet-counted)")
    .option('--syslog-ca <file>', 'with tls://, the CA certificate (PEM) that signs the syslog server\'s (default: the system\'s CAs)')
    .action(async (opts: { listen: string; env: string; dataPlane: string; stopRouters?: boolean; logsMaxAge: string; logsMaxSize: string; syslog?: string; syslogCa?: string }, cmd: Command) => {
      const global = cmd.optsWithGlobals<GlobalOptions>();
      const match = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):(\d{1,5})$/.exec(opts.listen);
      if (!match || Number(match[2]) > 65535) throw new ConfigError(`--listen: expected a loopback address like "127.0.0.1:7420", got "${opts.listen}"`);
      // Looser than an environment's name: a state folder from before environments may have any home name but '@'.
      if (!/^[^\s@]{1,64}$/.test(opts.env)) throw new ConfigError(`--env: expected a name of 1 to 64 characters without spaces or "@", got "${opts.env}"`);
      const home = resolveHome(global.home);
      const { parseDataPlane } = await import('../../router/data-plane.js');
      const dataPlane = parseDataPlane(opts.dataPlane);
      const maxAgeMs = parseDuration(opts.logsMaxAge, { max: 3650 * 86_400_000 });
      if (typeof maxAgeMs !== 'number') throw new ConfigError(`--logs-max-age: ${maxAgeMs.error}`);
      const maxBytes = parseByteSize(opts.logsMaxSize);
      if (typeof maxBytes !== 'number') throw new ConfigError(`--logs-max-size: ${maxBytes.error}`);
      const { parseSyslogTarget } = await import('../../logs/syslog.js');
      const target = opts.syslog ? parseSyslogTarget(opts.syslog) : undefined;
      if (target && 'error' in target) throw new ConfigError(`--syslog: ${target.error}`);
      if (opts.syslogCa && !target?.tls) throw new ConfigError('--syslog-ca: only with a tls:// --syslog target');
      const ca = opts.syslogCa ? await readFile(opts.syslogCa, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new ConfigError(`--syslog-ca: cannot read ${opts.syslogCa}: ${error.code ?? error.message}`);
      }) : undefined;
      const [{ ImageStore }, { Providers }, { ControlPlane }, { createApi, listen }, { ensureToken }] = await Promise.all([
        import('../../store/image-store.js'),
        import('../../providers/registry.js'),
        import('../../server/control-plane.js'),
        import('../../server/api.js'),
        import('../../server/token.js'),
      ]);
      const store = await ImageStore.open(home);
      const plane = new ControlPlane(store, Providers.forStore(store), { env: opts.env, dataPlane, logs: { retention: { maxAgeMs, maxBytes }, ...(target ? { forward: { target, ca } } : {}) } });
      await plane.start();
      for (const [service, reason] of plane.unavailable) process.stderr.write(`warning: service '${service}' was not adopted: ${reason}\n`);
      const token = await ensureToken(home);
      const server = createApi(plane, token);
      const address = await listen(server, match[1]!.replace(/^\[|\]$/g, ''), Number(match[2]));
      const url = `http://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
      await writeFile(serverFile(home), JSON.stringify({ url, pid: process.pid }));
      process.stdout.write(`imago server listening on ${url} (state: ${home}, token: ${home}/api-token, data plane: ${plane.dataPlane})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop).once('SIGTERM', stop);
      });
      process.stdout.write(opts.stopRouters || plane.dataPlane === 'in-process' ? 'imago server stopping: routers stop, instances keep running\n' : 'imago server stopping: routers and instances keep running\n');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await plane.close({ stopRouters: opts.stopRouters === true });
      await rm(serverFile(home), { force: true });
      store.close();
    });
}
