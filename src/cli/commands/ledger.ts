import type { Command } from 'commander';
import { ImagoError } from '../../errors.js';
import type { LedgerEvent } from '../../state/types.js';
import { printJson, withStore, type GlobalOptions } from '../context.js';
import { table } from '../format.js';
import { parseLogTime } from './logs.js';

/** How often `imago events -f` looks for new events. */
const FOLLOW_EVERY_MS = 250;

/** What an event says beyond its kind, in one short line (its data, its instance). */
function detail(e: LedgerEvent): string {
  const parts: string[] = [];
  if (e.instance) parts.push(e.instance);
  for (const [key, value] of Object.entries(e.data)) parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return parts.join(' ');
}

/** Registers `imago ledger`, `imago ledger verify` and `imago at`: they read the state database directly, with or without a server. */
export function registerLedger(program: Command): void {
  const ledger = program
    .command('ledger')
    .description('what imago did, and who asked: every release, deploy step, instance start and stop, scaling, drift, guard action and lock')
    .option('--service <name>', "only this service's events")
    .option('--since <time>', 'from this time: a duration back ("1h") or a date and time')
    .option('--json', 'print as JSON')
    .action(async (opts: { service?: string; since?: string; json?: boolean }, cmd: Command) => {
      const since = opts.since ? new Date(parseLogTime('--since', opts.since)) : undefined;
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { listEvents } = await import('../../state/ledger.js');
        const events = listEvents(store.db, { ...(opts.service ? { service: opts.service } : {}), ...(since ? { since } : {}) });
        if (opts.json) return printJson(events);
        const { getRelease } = await import('../../state/releases.js');
        const version = (id: number | undefined) => (id === undefined ? '-' : String(getRelease(store.db, id)?.version ?? `#${id}`));
        process.stdout.write(`${table(['SEQ', 'AT', 'ACTOR', 'KIND', 'SERVICE', 'RELEASE', 'DETAIL'], events.map((e) => [String(e.seq), e.at, e.actor, e.kind, e.service ?? '-', version(e.releaseId), detail(e)]))}\n`);
      });
    });

  ledger
    .command('verify')
    .description('re-walk the hash chain: exit 1 naming the first event that was edited, deleted or reordered')
    .option('--json', 'print as JSON')
    .action(async (_opts: { json?: boolean }, cmd: Command) => {
      // `ledger` has a --json of its own, and takes it wherever it is written on the line.
      const opts = cmd.optsWithGlobals<{ json?: boolean }>();
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { verifyLedger } = await import('../../state/ledger.js');
        const check = verifyLedger(store.db);
        if (opts.json) printJson(check);
        else if (check.ok) process.stdout.write(`ledger intact: ${check.count} events, head ${check.head.slice(0, 12)}\n`);
        if (!check.ok) throw new ImagoError(`ledger broken at event ${check.seq}: ${check.reason}`);
      });
    });

  program
    .command('events')
    .description('what the control plane does as it happens (releases, deploy steps, instance starts and stops with their reason, drift, guard actions, locks)')
    .option('--service <name>', "only this service's events")
    .option('--since <time>', 'from this time: a duration back ("10m") or a date and time (default: every event; with -f, from now)')
    .option('-f, --follow', 'keep printing new events as they happen (Ctrl-C ends)')
    .option('--json', 'one JSON object per event')
    .action(async (opts: { service?: string; since?: string; follow?: boolean; json?: boolean }, cmd: Command) => {
      const since = new Date(opts.since ? parseLogTime('--since', opts.since) : opts.follow ? Date.now() : 0);
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { lastEventSeq, listEvents } = await import('../../state/ledger.js');
        const filter = opts.service ? { service: opts.service } : {};
        const print = (events: LedgerEvent[]) => {
          for (const e of events) process.stdout.write(opts.json ? `${JSON.stringify(e)}\n` : `${e.at} ${e.actor} ${e.kind}${e.service ? ` ${e.service}` : ''} ${detail(e)}\n`);
        };
        // Everything up to the head as it is now is looked at once; a follow goes on after it.
        let after = lastEventSeq(store.db);
        let events = listEvents(store.db, { ...filter, since }).filter((e) => e.seq <= after);
        print(events);
        while (opts.follow) {
          await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
          events = listEvents(store.db, { ...filter, sinceSeq: after });
          print(events);
          after = events.at(-1)?.seq ?? after;
        }
      });
    });

  program
    .command('at <time> [service]')
    .description('which releases, digests and instances ran at a moment, from the ledger (a duration back, "2h", or a date and time)')
    .option('--json', 'print as JSON')
    .action(async (time: string, service: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const at = parseLogTime('<time>', time);
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const [{ listEvents }, { runningAt }, { getRelease }] = await Promise.all([import('../../state/ledger.js'), import('../../state/at.js'), import('../../state/releases.js')]);
        const services = runningAt(listEvents(store.db, service ? { service } : {}), at).filter((s) => !service || s.service === service);
        if (service && services.length === 0) throw new ImagoError(`service '${service}' had no events at or before ${new Date(at).toISOString()}`, { exitCode: 2 });
        const release = (id: number | undefined) => (id === undefined ? undefined : getRelease(store.db, id));
        const window = (t: number) => new Date(t).toISOString();
        const out = services.map((s) => {
          const live = release(s.liveReleaseId);
          return {
            service: s.service,
            live: live ? { version: live.version, digest: live.digest } : null,
            instances: s.instances.map((i) => ({ id: i.id, release: release(i.releaseId)?.version ?? null, digest: release(i.releaseId)?.digest ?? null, since: i.since })),
            logs: `imago logs ${s.service} --since ${window(at - 5 * 60_000)} --until ${window(at + 5 * 60_000)}`,
          };
        });
        if (opts.json) return printJson({ at: new Date(at).toISOString(), services: out });
        process.stdout.write(`at ${new Date(at).toISOString()}\n`);
        for (const s of out) {
          process.stdout.write(`${s.service}  live: ${s.live ? `release ${s.live.version} ${s.live.digest.slice(7, 19)}` : 'none'}\n`);
          if (s.instances.length > 0) process.stdout.write(`${table(['INSTANCE', 'RELEASE', 'DIGEST', 'SINCE'], s.instances.map((i) => [i.id, String(i.release ?? '-'), i.digest?.slice(7, 19) ?? '-', i.since]))}\n`);
          process.stdout.write(`  logs: ${s.logs}\n`);
        }
      });
    });
}
