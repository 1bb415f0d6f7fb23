import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { resolveHome } from '../../store/home.js';
import { ApiClient } from '../api-client.js';
import { printJson, type GlobalOptions } from '../context.js';
import { formatAgo, formatMs, table } from '../format.js';

/** A service as the server reports it in /v1/status. */
interface StatusEntry {
  service: string;
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
  /** The service as written in the config file (validated here too, so errors name the file): the server normalises it. */
  const serviceFromConfig = async (name: string, cmd: Command): Promise<{ raw: Record<string, unknown>; image: string }> => {
    const options = cmd.optsWithGlobals<GlobalOptions>();
    const { loadConfigSource } = await import('../../config/load.js');
    const { config, raw } = await loadConfigSource(options.config ? { file: options.config } : { cwd: process.cwd() });
    const service = config.services[name];
    if (!service) throw new ConfigError(`unknown service "${name}": expected one of ${Object.keys(config.services).join(', ') || '(none declared under services)'}`, { file: config.file });
    const written = (raw.services as Record<string, Record<string, unknown>>)[name]!;
    // TLS files are read by the server: sent as absolute paths (the config's are relative to its folder).
    const tls = service.listen?.tls;
    const sent = tls && typeof written.listen === 'object' && written.listen !== null ? { ...written, listen: { ...(written.listen as Record<string, unknown>), tls } } : written;
    return { raw: sent, image: service.image };
  };

  program
    .command('deploy')
    .description('deploy a service from the config: new instances, health gate, traffic shift, old ones drained (a change of replicas alone scales)')
    .argument('<service>', 'service name from the config')
    .option('--image <ref>', 'image to deploy (default: the service\'s image)')
    .option('--force', 'a new release even when nothing changed: every instance is replaced')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { image?: string; force?: boolean; json?: boolean }, cmd: Command) => {
      const { raw, image } = await serviceFromConfig(name, cmd);
      const result = await (await client(cmd)).call<{ outcome: string; reason?: string; scaled?: { from: number; to: number }; release: { version: number; digest: string } }>('POST', `/v1/services/${name}/deploy`, {
        service: raw,
        image: opts.image ?? image,
        ...(opts.force ? { force: true } : {}),
      });
      if (opts.json) printJson(result);
      else if (result.outcome === 'unchanged') process.stdout.write(`${name}: release ${result.release.version} is live and nothing changed (use --force to replace every instance anyway)\n`);
      else if (result.outcome === 'scaled') process.stdout.write(`${name}: scaled ${result.scaled!.from} → ${result.scaled!.to} (release ${result.release.version}, no instance replaced)\n`);
      else process.stdout.write(`${name}: release ${result.release.version} ${result.outcome}${result.reason ? ` (${result.reason})` : ''} (${result.release.digest})\n`);
      if (result.outcome === 'failed') process.exitCode = 1;
    });

  program
    .command('plan')
    .description('show what a deploy would do: each step and the serving capacity after it')
    .argument('<service>', 'service name from the config')
    .option('--image <ref>', 'image to deploy (default: the service\'s image)')
    .option('--json', 'print the plan as JSON')
    .action(async (name: string, opts: { image?: string; json?: boolean }, cmd: Command) => {
      const { raw, image } = await serviceFromConfig(name, cmd);
      const result = await (await client(cmd)).call<{ digest: string; plan: { strategy: string; steps: Array<{ step: Record<string, number | string>; serving: number; running: number }> } }>('POST', `/v1/services/${name}/plan`, { service: raw, image: opts.image ?? image });
      if (opts.json) return printJson(result);
      const rows = result.plan.steps.map(({ step, serving, running }, i) => [String(i + 1), describeStep(step), String(serving), String(running)]);
      process.stdout.write(`${name}: ${result.plan.strategy} to ${result.digest}\n${table(['#', 'STEP', 'SERVING', 'RUNNING'], rows)}\n`);
    });

  program
    .command('rollback')
    .description('deploy an earlier release again (the last good one, or --to <release>); the replica count stays')
    .argument('<service>', 'service name')
    .option('--to <release>', 'release number to go back to')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { to?: string; json?: boolean }, cmd: Command) => {
      const to = opts.to === undefined ? undefined : Number(opts.to);
      if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new ConfigError(`--to: expected a release number, got "${opts.to}"`);
      const result = await (await client(cmd)).call<{ outcome: string; reason?: string; release: { version: number; digest: string } }>('POST', `/v1/services/${name}/rollback`, { to });
      if (opts.json) printJson(result);
      else process.stdout.write(`${name}: rolled back as release ${result.release.version} ${result.outcome}${result.reason ? ` (${result.reason})` : ''}\n`);
      if (result.outcome === 'failed') process.exitCode = 1;
    });

  program
    .command('scale')
    .description('change the number of instances of the live release: starts or drains and stops only the difference')
    .argument('<service>', 'service name')
    .argument('<replicas>', 'how many instances')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, count: string, opts: { json?: boolean }, cmd: Command) => {
      const replicas = Number(count);
      if (!/^\d+$/.test(count) || replicas > 1000) throw new ConfigError(`<replicas>: expected a whole number of instances from 0 to 1000, got "${count}"`);
      if (!opts.json && process.stderr.isTTY) process.stderr.write(`${name}: scaling to ${replicas} …\n`);
      const result = await (await client(cmd)).call<{ from: number; to: number; ms: number }>('POST', `/v1/services/${name}/scale`, { replicas });
      if (opts.json) printJson(result);
      else process.stdout.write(`${name}: scaled ${result.from} → ${result.to}, all healthy and routed in ${formatMs(result.ms)}\n`);
    });

  program
    .command('drill')
    .description('fire drill: kill instances as a crash or a host reboot would, and report the time back to full healthy capacity')
    .argument('<service>', 'service name')
    .option('--kill <n|all>', 'how many instances to kill (a number, or all)', '1')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { kill: string; json?: boolean }, cmd: Command) => {
      const kill = opts.kill === 'all' ? 'all' : Number(opts.kill);
      if (kill !== 'all' && (!/^\d+$/.test(opts.kill) || kill < 1)) throw new ConfigError(`--kill: expected a number of instances of at least 1, or "all", got "${opts.kill}"`);
      if (!opts.json && process.stderr.isTTY) process.stderr.write(`${name}: killing ${kill === 'all' ? 'every instance' : `${kill} instance(s)`}, waiting for full capacity …\n`);
      const result = await (await client(cmd)).call<{ killed: string[]; recoveredMs: number; requests: number; failedRequests: number; retriedRequests: number }>('POST', `/v1/services/${name}/drill`, { kill });
      if (opts.json) return printJson(result);
      process.stdout.write(
        `${name}: killed ${result.killed.length} (${result.killed.join(', ')}); back at full healthy capacity in ${formatMs(result.recoveredMs)}\n` +
          `router meanwhile: ${result.requests} requests, ${result.failedRequests} failed, ${result.retriedRequests} sent to another instance\n`,
      );
    });

  program
    .command('status')
    .description('services, their live release, health verdict and instances')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const services = await (await client(cmd)).call<StatusEntry[]>('GET', '/v1/status');
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
    .option('--json', 'print as JSON')
    .action(async (service: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const findings = await (await client(cmd)).call<Array<{ service: string; instance: string; finding: string; action: string; foundAt: string }>>('GET', `/v1/drift${service ? `?service=${encodeURIComponent(service)}` : ''}`);
      if (opts.json) return printJson(findings);
      if (findings.length === 0) return void process.stdout.write(`no drift found${service ? ` in ${service}` : ''}\n`);
      const rows = findings.map((f) => [f.service, f.instance, formatAgo(f.foundAt), f.action === 'replace' ? 'replaced' : 'reported', f.finding]);
      process.stdout.write(`${table(['SERVICE', 'INSTANCE', 'FOUND', 'ACTION', 'FINDING'], rows)}\n`);
    });

  program
    .command('history')
    .description('a service\'s releases, newest first')
    .argument('<service>', 'service name')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const releases = await (await client(cmd)).call<Array<{ version: number; status: string; digest: string; createdBy: string; createdAt: string; reason?: string }>>('GET', `/v1/services/${name}/history`);
      if (opts.json) return printJson(releases);
      const rows = releases.map((r) => [String(r.version), r.status, r.digest.slice(7, 19), r.createdBy, formatAgo(r.createdAt), r.reason ?? '']);
      process.stdout.write(`${table(['RELEASE', 'STATUS', 'DIGEST', 'BY', 'WHEN', 'REASON'], rows)}\n`);
    });
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
