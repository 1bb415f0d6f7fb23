import type { Command } from 'commander';
import type { ServiceSpec } from '../../config/types.js';
import { ConfigError } from '../../errors.js';
import { resolveHome } from '../../store/home.js';
import { ApiClient } from '../api-client.js';
import { printJson, readConfig, type GlobalOptions } from '../context.js';
import { formatAgo, table } from '../format.js';

/** `imago deploy|plan|rollback|status|history`: thin clients of the server's API. */
export function registerDeploy(program: Command): void {
  const client = (cmd: Command) => ApiClient.connect(resolveHome(cmd.optsWithGlobals<GlobalOptions>().home));
  const serviceFromConfig = async (name: string, cmd: Command): Promise<ServiceSpec> => {
    const config = await readConfig(cmd.optsWithGlobals<GlobalOptions>());
    const service = config.services[name];
    if (!service) throw new ConfigError(`unknown service "${name}": expected one of ${Object.keys(config.services).join(', ') || '(none declared under services)'}`, { file: config.file });
    return service;
  };

  program
    .command('deploy')
    .description('deploy a service from the config: new instances, health gate, traffic shift, old ones drained')
    .argument('<service>', 'service name from the config')
    .option('--image <ref>', 'image to deploy (default: the service\'s image)')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { image?: string; json?: boolean }, cmd: Command) => {
      const service = await serviceFromConfig(name, cmd);
      const result = await (await client(cmd)).call<{ outcome: string; reason?: string; release: { version: number; digest: string } }>('POST', `/v1/services/${name}/deploy`, { service, image: opts.image ?? service.image });
      if (opts.json) printJson(result);
      else process.stdout.write(`${name}: release ${result.release.version} ${result.outcome}${result.reason ? ` (${result.reason})` : ''} (${result.release.digest})\n`);
      if (result.outcome !== 'live') process.exitCode = 1;
    });

  program
    .command('plan')
    .description('show what a deploy would do: each step and the serving capacity after it')
    .argument('<service>', 'service name from the config')
    .option('--image <ref>', 'image to deploy (default: the service\'s image)')
    .option('--json', 'print the plan as JSON')
    .action(async (name: string, opts: { image?: string; json?: boolean }, cmd: Command) => {
      const service = await serviceFromConfig(name, cmd);
      const result = await (await client(cmd)).call<{ digest: string; plan: { strategy: string; steps: Array<{ step: Record<string, number | string>; serving: number; running: number }> } }>('POST', `/v1/services/${name}/plan`, { service, image: opts.image ?? service.image });
      if (opts.json) return printJson(result);
      const rows = result.plan.steps.map(({ step, serving, running }, i) => [String(i + 1), describeStep(step), String(serving), String(running)]);
      process.stdout.write(`${name}: ${result.plan.strategy} to ${result.digest}\n${table(['#', 'STEP', 'SERVING', 'RUNNING'], rows)}\n`);
    });

  program
    .command('rollback')
    .description('deploy an earlier release again (the last good one, or --to <release>)')
    .argument('<service>', 'service name')
    .option('--to <release>', 'release number to go back to')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { to?: string; json?: boolean }, cmd: Command) => {
      const to = opts.to === undefined ? undefined : Number(opts.to);
      if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new ConfigError(`--to: expected a release number, got "${opts.to}"`);
      const result = await (await client(cmd)).call<{ outcome: string; reason?: string; release: { version: number; digest: string } }>('POST', `/v1/services/${name}/rollback`, { to });
      if (opts.json) printJson(result);
      else process.stdout.write(`${name}: rolled back as release ${result.release.version} ${result.outcome}${result.reason ? ` (${result.reason})` : ''}\n`);
      if (result.outcome !== 'live') process.exitCode = 1;
    });

  program
    .command('status')
    .description('services, their live release and instances')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      type Instance = { id: string; release: number; state: string; health: string; routed: boolean; address: string; startedAt: number; drift?: string[] };
      const services = await (await client(cmd)).call<Array<{ service: string; url: string; provider?: string; error?: string; live: { version: number; digest: string } | null; instances: Instance[] }>>('GET', '/v1/status');
      if (opts.json) return printJson(services);
      for (const s of services) {
        if (s.error) {
          process.stdout.write(`${s.service}  UNAVAILABLE: ${s.error}\n`);
          continue;
        }
        process.stdout.write(`${s.service}  ${s.url}  ${s.provider ?? 'process'}  live: ${s.live ? `release ${s.live.version} ${s.live.digest.slice(7, 19)}` : 'none'}\n`);
        const rows = s.instances.map((i) => [i.id, String(i.release), i.health, i.routed ? 'yes' : 'no', i.drift?.length ? 'DRIFTED' : '-', formatAgo(new Date(i.startedAt).toISOString()), i.address]);
        process.stdout.write(`${table(['INSTANCE', 'RELEASE', 'HEALTH', 'ROUTED', 'DRIFT', 'STARTED', 'ADDRESS'], rows)}\n`);
        for (const i of s.instances) for (const line of i.drift ?? []) process.stdout.write(`  ${i.id} drifted: ${line}\n`);
      }
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
