import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../errors.js';
import { resolveHome } from '../../store/home.js';
import { ApiClient } from '../api-client.js';
import { environmentOf, printJson, type GlobalOptions } from '../context.js';
import { formatAgo, formatMs, table } from '../format.js';

/** A service as the server reports it in /v1/status. */
interface StatusEntry {
  /** The service's key: its name, and `@<env>` outside the server's home environment. */
  service: string;
  name?: string;
  env?: string;
  url: string;
  provider?: string;
  dataPlane?: string;
  router?: { kind: string; pid: number | null };
  traffic?: { requests: number; failed: number; retried: number; releases: Record<string, { requests: number; latencyMs: { p50: number | null; p99: number | null } }> } | { error: string };
  error?: string;
  live: { version: number; digest: string; revoked?: string | null } | null;
  desired?: { release: number | null; replicas: number };
  degraded?: { reason: string; nextStartAt: number | null } | null;
  instances: Array<{ id: string; release: number; state: string; health: string; routed: boolean; address: string; startedAt: number; drift?: string[]; bucket?: string; retiring?: string; dueAt?: number; revoked?: string | null }>;
}

/** `imago deploy|plan|rollback|scale|drill|status|drift|history`: thin clients of the server's API. */
export function registerDeploy(program: Command): void {
  const client = (cmd: Command) => ApiClient.connect(resolveHome(cmd.optsWithGlobals<GlobalOptions>().home));
  /**
   * The service as written in the config file, with the overrides of its environment (`--env`,
   * else the config's default one) laid over it, validated here too so errors name the file:
   * the server normalises it. Also the environment's policy (minSoak, requireSignature's keys).
   */
  const serviceFromConfig = async (name: string, cmd: Command, given: string | undefined): Promise<{ raw: Record<string, unknown>; image: string; env: string | undefined; environments: string[]; policy: Record<string, unknown> | undefined }> => {
    const options = cmd.optsWithGlobals<GlobalOptions>();
    const [{ loadConfigSource }, { serviceInEnvironment }, { checkEnvironmentName }] = await Promise.all([
      import('../../config/load.js'),
      import('../../config/normalise.js'),
      import('../../config/environments.js'),
    ]);
    if (given !== undefined) checkEnvironmentName(given, '--env');
    const { config, raw } = await loadConfigSource(options.config ? { file: options.config } : { cwd: process.cwd() });
    if (!config.services[name]) throw new ConfigError(`unknown service "${name}": expected one of ${Object.keys(config.services).join(', ') || '(none declared under services)'}`, { file: config.file });
    const env = given ?? config.defaultEnvironment;
    const { written, spec } = serviceInEnvironment(config, (raw.services as Record<string, Record<string, unknown>>)[name]!, name, env);
    // TLS files are read by the server: sent as absolute paths (the config's are relative to its folder).
    const tls = spec.listen?.tls;
    const sent = tls && typeof written.listen === 'object' && written.listen !== null ? { ...written, listen: { ...(written.listen as Record<string, unknown>), tls } } : written;
    // The environment's signature policy: its public keys, read here and sent (the server holds none of the config's files).
    const required = env ? config.environments[env]!.requireSignature : undefined;
    const keys = required ? await Promise.all(required.keys.map((file) => readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError(`environments.${env}.requireSignature.keys: cannot read ${file}: ${error.code ?? error.message}`, { file: config.file });
    }))) : undefined;
    // The environment's policy as this config says it; the server holds a client that is not an admin to what an admin's said.
    const policy = env ? { minSoak: config.environments[env]!.minSoak, ...(keys ? { requireSignature: { keys } } : {}) } : undefined;
    return { raw: sent, image: spec.image, env, environments: Object.keys(config.environments), policy };
  };
  const envOption = '--env <name>';
  const envHelp = "environment (default: the config's defaultEnvironment, else the server's home one)";

  program
    .command('deploy')
    .description('deploy a service from the config: new instances, health gate, traffic shift, old ones drained (a change of replicas alone scales)')
    .argument('<service>', 'service name from the config')
    .option('--image <ref>', 'image to deploy (default: the service\'s image)')
    .option('--force', 'a new release even when nothing changed: every instance is replaced')
    .option(envOption, envHelp)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { image?: string; force?: boolean; env?: string; json?: boolean }, cmd: Command) => {
      const { raw, image, env, policy } = await serviceFromConfig(name, cmd, opts.env);
      const result = await (await client(cmd)).call<DeployAnswer>('POST', `/v1/services/${name}/deploy`, {
        service: raw,
        image: opts.image ?? image,
        ...(env ? { env } : {}),
        ...(policy ? { policy } : {}),
        ...(opts.force ? { force: true } : {}),
      });
      if (opts.json) printJson(result);
      else process.stdout.write(describeOutcome(result));
      if (result.outcome === 'failed') process.exitCode = 1;
    });

  program
    .command('promote')
    .description('deploy to one environment exactly the image that is live in another (refused when it failed there or soaked too briefly)')
    .argument('<service>', 'service name from the config')
    .requiredOption('--from <env>', 'the environment it is live in')
    .requiredOption('--to <env>', 'the environment to deploy it to (its overrides and minSoak apply)')
    .option('--release <n>', 'promote this release of the source instead of its live one')
    .option('--image <ref>', 'promote the newest release of the source with this image')
    .option('--force', 'promote even when the release failed there, was rolled back, or soaked less than minSoak (needs --reason)')
    .option('--reason <text>', 'why, with --force: recorded in the ledger')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { from: string; to: string; release?: string; image?: string; force?: boolean; reason?: string; json?: boolean }, cmd: Command) => {
      const { raw, environments, policy } = await serviceFromConfig(name, cmd, opts.to);
      if (!environments.includes(opts.from)) throw new ConfigError(`--from: unknown environment "${opts.from}": expected one of ${environments.join(', ')}`);
      const release = opts.release === undefined ? undefined : Number(opts.release);
      if (release !== undefined && (!Number.isInteger(release) || release < 1)) throw new ConfigError(`--release: expected a release number, got "${opts.release}"`);
      if (release !== undefined && opts.image) throw new ConfigError('--release and --image: name one of them, not both');
      if (opts.force && !opts.reason?.trim()) throw new ConfigError('--force needs --reason "…": the ledger records why a promotion went past its checks');
      if (!opts.force && opts.reason) throw new ConfigError('--reason goes with --force (a promotion that passes its checks needs none)');
      if (!opts.json && process.stderr.isTTY) process.stderr.write(`${name}: promoting from ${opts.from} to ${opts.to} …\n`);
      const result = await (await client(cmd)).call<DeployAnswer & { promotedFrom: { env: string; service: string; version: number } }>('POST', `/v1/services/${name}/promote`, {
        from: opts.from,
        to: opts.to,
        service: raw,
        ...(policy ? { policy } : {}),
        ...(release !== undefined ? { release } : {}),
        ...(opts.image ? { image: opts.image } : {}),
        ...(opts.force ? { force: true, reason: opts.reason } : {}),
      });
      if (opts.json) printJson(result);
      else process.stdout.write(describeOutcome(result, ` from ${result.promotedFrom.service} release ${result.promotedFrom.version}`));
      if (result.outcome === 'failed') process.exitCode = 1;
    });

  program
    .command('plan')
    .description('show what a deploy would do: each step and the serving capacity after it')
    .argument('<service>', 'service name from the config')
    .option('--image <ref>', 'image to deploy (default: the service\'s image)')
    .option(envOption, envHelp)
    .option('--json', 'print the plan as JSON')
    .action(async (name: string, opts: { image?: string; env?: string; json?: boolean }, cmd: Command) => {
      const { raw, image, env } = await serviceFromConfig(name, cmd, opts.env);
      const result = await (await client(cmd)).call<{ digest: string; plan: { strategy: string; steps: Array<{ step: Record<string, number | string>; serving: number; running: number }> } }>('POST', `/v1/services/${name}/plan`, { service: raw, image: opts.image ?? image, ...(env ? { env } : {}) });
      if (opts.json) return printJson(result);
      const rows = result.plan.steps.map(({ step, serving, running }, i) => [String(i + 1), describeStep(step), String(serving), String(running)]);
      process.stdout.write(`${name}: ${result.plan.strategy} to ${result.digest}\n${table(['#', 'STEP', 'SERVING', 'RUNNING'], rows)}\n`);
    });

  program
    .command('rollback')
    .description('deploy an earlier release again (the last good one, or --to <release>); the replica count stays')
    .argument('<service>', 'service name')
    .option('--to <release>', 'release number to go back to')
    .option(envOption, envHelp)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { to?: string; env?: string; json?: boolean }, cmd: Command) => {
      const to = opts.to === undefined ? undefined : Number(opts.to);
      if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new ConfigError(`--to: expected a release number, got "${opts.to}"`);
      const env = await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env);
      const result = await (await client(cmd)).call<DeployAnswer>('POST', `/v1/services/${name}/rollback`, { to, ...(env ? { env } : {}) });
      if (opts.json) printJson(result);
      else process.stdout.write(`${result.release.service}: rolled back as release ${result.release.version} ${result.outcome}${result.reason ? ` (${result.reason})` : ''}\n`);
      if (result.outcome === 'failed') process.exitCode = 1;
    });

  program
    .command('scale')
    .description('change the number of instances of the live release: starts or drains and stops only the difference')
    .argument('<service>', 'service name')
    .argument('<replicas>', 'how many instances')
    .option(envOption, envHelp)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, count: string, opts: { env?: string; json?: boolean }, cmd: Command) => {
      const replicas = Number(count);
      if (!/^\d+$/.test(count) || replicas > 1000) throw new ConfigError(`<replicas>: expected a whole number of instances from 0 to 1000, got "${count}"`);
      const env = await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env);
      if (!opts.json && process.stderr.isTTY) process.stderr.write(`${name}: scaling to ${replicas} …\n`);
      const result = await (await client(cmd)).call<{ service: string; from: number; to: number; ms: number }>('POST', `/v1/services/${name}/scale`, { replicas, ...(env ? { env } : {}) });
      if (opts.json) printJson(result);
      else process.stdout.write(`${result.service}: scaled ${result.from} → ${result.to}, all healthy and routed in ${formatMs(result.ms)}\n`);
    });

  program
    .command('drill')
    .description('fire drill: kill instances as a crash or a host reboot would, and report the time back to full healthy capacity')
    .argument('<service>', 'service name')
    .option('--kill <n|all>', 'how many instances to kill (a number, or all)', '1')
    .option(envOption, envHelp)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { kill: string; env?: string; json?: boolean }, cmd: Command) => {
      const kill = opts.kill === 'all' ? 'all' : Number(opts.kill);
      if (kill !== 'all' && (!/^\d+$/.test(opts.kill) || kill < 1)) throw new ConfigError(`--kill: expected a number of instances of at least 1, or "all", got "${opts.kill}"`);
      const env = await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env);
      if (!opts.json && process.stderr.isTTY) process.stderr.write(`${name}: killing ${kill === 'all' ? 'every instance' : `${kill} instance(s)`}, waiting for full capacity …\n`);
      const result = await (await client(cmd)).call<{ service: string; killed: string[]; recoveredMs: number; requests: number; failedRequests: number; retriedRequests: number }>('POST', `/v1/services/${name}/drill`, { kill, ...(env ? { env } : {}) });
      if (opts.json) return printJson(result);
      process.stdout.write(
        `${result.service}: killed ${result.killed.length} (${result.killed.join(', ')}); back at full healthy capacity in ${formatMs(result.recoveredMs)}\n` +
          `router meanwhile: ${result.requests} requests, ${result.failedRequests} failed, ${result.retriedRequests} sent to another instance\n`,
      );
    });

  program
    .command('status')
    .description('services, their live release, health verdict and instances')
    .option(envOption, 'only the services of this environment (default: every environment)')
    .option('--json', 'print as JSON')
    .action(async (opts: { env?: string; json?: boolean }, cmd: Command) => {
      if (opts.env !== undefined) await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env); // checks the name
      const services = (await (await client(cmd)).call<StatusEntry[]>('GET', '/v1/status')).filter((s) => opts.env === undefined || s.env === opts.env);
      if (opts.json) return printJson(services);
      const now = Date.now();
      for (const s of services) {
        if (s.error && !s.url) {
          process.stdout.write(`${s.service}  UNAVAILABLE: ${s.error}\n`);
          continue;
        }
        const desired = s.desired ? `  desired: ${s.desired.replicas} × ${s.desired.release ? `release ${s.desired.release}` : 'nothing'}` : '';
        process.stdout.write(`${s.service}  ${s.url}  ${s.provider ?? 'process'}  live: ${s.live ? `release ${s.live.version} ${s.live.digest.slice(7, 19)}` : 'none'}${desired}\n`);
        if (s.router) process.stdout.write(`  router: ${s.router.kind}${s.router.pid ? ` (pid ${s.router.pid})` : ''}${trafficLine(s.traffic)}\n`);
        if (s.live?.revoked) process.stdout.write(`  REVOKED: the live image ${s.live.digest} was revoked: ${s.live.revoked}; deploy another\n`);
        for (const i of s.instances) if (i.revoked && !s.live?.revoked) process.stdout.write(`  REVOKED: ${i.id} runs a revoked image: ${i.revoked}\n`);
        if (s.degraded) process.stdout.write(`  DEGRADED: ${s.degraded.reason}${s.degraded.nextStartAt ? `; next start in ${formatMs(Math.max(0, s.degraded.nextStartAt - now))}` : ''}\n`);
        if (s.error) process.stdout.write(`  ERROR: ${s.error}\n`);
        const rows = s.instances.map((i) => [
          i.id,
          i.release === undefined || i.release === null ? '-' : String(i.release),
          i.health,
          i.routed ? 'yes' : 'no',
          i.drift?.length ? 'DRIFTED' : '-',
          formatAgo(new Date(i.startedAt).toISOString(), now).replace(/ ago$/, ''),
          i.dueAt ? (i.dueAt <= now ? 'now' : `in ${formatMs(i.dueAt - now)}`) : '-',
          i.retiring ?? '',
          i.address,
        ]);
        process.stdout.write(`${table(['INSTANCE', 'RELEASE', 'HEALTH', 'ROUTED', 'DRIFT', 'AGE', 'RECYCLED', 'LEAVING', 'ADDRESS'], rows)}\n`);
        for (const i of s.instances) for (const line of i.drift ?? []) process.stdout.write(`  ${i.id} drifted: ${line}\n`);
      }
    });

  program
    .command('drift')
    .description('what was done to instances from outside imago, as the guard found it, and what it did')
    .argument('[service]', 'only this service')
    .option(envOption, 'with a service: its environment (default: the config\'s defaultEnvironment, else the server\'s home one)')
    .option('--json', 'print as JSON')
    .action(async (service: string | undefined, opts: { env?: string; json?: boolean }, cmd: Command) => {
      const env = service ? await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env) : undefined;
      const query = service ? `?service=${encodeURIComponent(service)}${env ? `&env=${encodeURIComponent(env)}` : ''}` : '';
      const findings = await (await client(cmd)).call<Array<{ service: string; instance: string; finding: string; action: string; foundAt: string }>>('GET', `/v1/drift${query}`);
      if (opts.json) return printJson(findings);
      if (findings.length === 0) return void process.stdout.write(`no drift found${service ? ` in ${service}` : ''}\n`);
      const rows = findings.map((f) => [f.service, f.instance, formatAgo(f.foundAt), f.action === 'replace' ? 'replaced' : 'reported', f.finding]);
      process.stdout.write(`${table(['SERVICE', 'INSTANCE', 'FOUND', 'ACTION', 'FINDING'], rows)}\n`);
    });

  program
    .command('history')
    .description('a service\'s releases, newest first')
    .argument('<service>', 'service name')
    .option(envOption, envHelp)
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { env?: string; json?: boolean }, cmd: Command) => {
      const env = await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env);
      const releases = await (await client(cmd)).call<Array<{ version: number; status: string; digest: string; createdBy: string; createdAt: string; reason?: string; rollbackOf?: number; promotedFrom?: { service: string; version: number } }>>('GET', `/v1/services/${name}/history${env ? `?env=${encodeURIComponent(env)}` : ''}`);
      if (opts.json) return printJson(releases);
      const origin = (r: (typeof releases)[number]) => (r.promotedFrom ? `promoted from ${r.promotedFrom.service} release ${r.promotedFrom.version}` : r.rollbackOf ? 'rollback' : 'deploy');
      const rows = releases.map((r) => [String(r.version), r.status, r.digest.slice(7, 19), origin(r), r.createdBy, formatAgo(r.createdAt), r.reason ?? '']);
      process.stdout.write(`${table(['RELEASE', 'STATUS', 'DIGEST', 'FROM', 'BY', 'WHEN', 'REASON'], rows)}\n`);
    });
}

/** What a deploy, a promotion or a rollback answers. */
interface DeployAnswer {
  outcome: string;
  reason?: string;
  scaled?: { from: number; to: number };
  release: { service: string; version: number; digest: string };
}

/** A deploy's outcome in one line, named by the service's key (`web`, `web@prod`). */
function describeOutcome(result: DeployAnswer, origin = ''): string {
  const { service, version, digest } = result.release;
  if (result.outcome === 'unchanged') return origin ? `${service}: release ${version} already runs that image with this config: nothing changed\n` : `${service}: release ${version} is live and nothing changed (use --force to replace every instance anyway)\n`;
  if (result.outcome === 'scaled') return `${service}: scaled ${result.scaled!.from} → ${result.scaled!.to} (release ${version}, no instance replaced)\n`;
  return `${service}: release ${version} ${result.outcome}${origin}${result.reason ? ` (${result.reason})` : ''} (${digest})\n`;
}

function describeStep(step: Record<string, number | string>): string {
  if (step.kind === 'shift') return `shift traffic: +${step.route} new, -${step.unroute} old`;
  const words: Record<string, string> = { start: 'start', 'wait-healthy': 'wait healthy', drain: 'drain', stop: 'stop' };
  return `${words[String(step.kind)] ?? step.kind} ${step.count}`;
}

/** One line of a router's counts: requests, failures, retries, and each release's share and latency. */
function trafficLine(traffic: StatusEntry['traffic']): string {
  if (!traffic) return '';
  if ('error' in traffic) return `  NOT ANSWERING: ${traffic.error}`;
  const releases = Object.entries(traffic.releases)
    .filter(([, t]) => t.requests > 0)
    .map(([release, t]) => `release ${release}: ${t.requests}${t.latencyMs.p50 !== null ? ` p50 ${t.latencyMs.p50}ms p99 ${t.latencyMs.p99}ms` : ''}`);
  return `  requests ${traffic.requests}, failed ${traffic.failed}, retried ${traffic.retried}${releases.length ? ` (${releases.join('; ')})` : ''}`;
}
