import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetch } from 'undici';
import { RouterError } from '../../src/errors.js';
import type { ListenSpec } from '../../src/router/engine/engine.js';
import type { RouterControl } from '../../src/router/router-control.js';
import { alive, procStat, waitForExit } from '../../src/util/pids.js';
import { backend } from '../support/backends.js';
import { freePort, waitFor } from '../support/net.js';
import { tempDir } from '../support/temp.js';

/** A data plane that runs as a process of its own, as the process suite sees it. */
export interface ProcessRouterKind {
  make: (listen: ListenSpec, folder: string) => RouterControl;
  /** Its pid file's name in its folder. */
  pidFile: string;
  /** The processes to stop (SIGSTOP) so that it no longer answers, without ending it. */
  processes: (pid: number) => number[];
}

/**
 * The suite of a router that is a process of its own: it outlives the control plane that
 * started it and the next one adopts it; a dead or hung one is replaced; a pid file naming
 * another process is ignored; one running elsewhere than asked is an error.
 */
export function processRouterSuite(name: string, kind: ProcessRouterKind): void {
  describe(`a router that is its own process: ${name}`, () => {
    let root = '';
    let n = 0;
    before(async () => {
      root = await tempDir('imago-router-process-');
    });
    const http: ListenSpec = { host: '127.0.0.1', port: 0, protocol: 'http' };
    /** A router in a folder; the test ends its process whatever happens. */
    const make = (folder: string, listen = http) => {
      const router = kind.make(listen, folder);
      after(() => router.stop());
      return router;
    };
    const folder = () => join(root, `r${++n}`);

    it('outlives the control plane that started it, and the next one adopts it as it is', async () => {
      const a = await backend('a');
      const dir = folder();
      const first = make(dir);
      const address = await first.start();
      await first.route({ id: 'a', host: '127.0.0.1', port: a.port, release: 1 });
      const pid = first.pid!;
      await first.close();
      assert.equal((await fetch(`http://127.0.0.1:${address.port}/`)).status, 200, 'serves with no one steering it');
      const second = make(dir, { ...http, port: address.port });
      assert.deepEqual(await second.start(), address);
      assert.equal(second.pid, pid, 'the same process');
      assert.deepEqual((await second.snapshot()).targets.map((t) => [t.id, t.routed, t.release]), [['a', true, 1]]);
      await second.stop();
      assert.ok(await waitForExit(pid, 1_000), 'its process ended');
      await assert.rejects(fetch(`http://127.0.0.1:${address.port}/`), 'stopped means stopped');
    });

    it('a router killed from outside is started anew on the same address', async () => {
      const dir = folder();
      const port = await freePort();
      const first = make(dir, { ...http, port });
      await first.start();
      const pid = first.pid!;
      process.kill(pid, 'SIGKILL');
      assert.ok(await waitForExit(pid, 5_000));
      const second = make(dir, { ...http, port });
      assert.equal((await second.start()).port, port);
      assert.notEqual(second.pid, pid);
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 503);
    });

    it('a router that no longer answers is ended and replaced', async () => {
      const dir = folder();
      const port = await freePort();
      const first = make(dir, { ...http, port });
      await first.start();
      const pid = first.pid!;
      // Hung as a whole: its process group (it runs detached) and every process it started.
      const stopped = kind.processes(pid);
      process.kill(-pid, 'SIGSTOP');
      for (const p of stopped) process.kill(p, 'SIGSTOP');
      after(() => {
        if (alive(pid)) process.kill(-pid, 'SIGKILL');
        for (const p of stopped) if (alive(p)) process.kill(p, 'SIGKILL');
      });
      // A stop takes effect when each thread next runs: until then a thread may still answer.
      await waitFor('every thread of the router to stop', () => stopped.every(allThreadsStopped), 5_000);
      const second = make(dir, { ...http, port });
      await second.start();
      assert.notEqual(second.pid, pid, `a new router, not the hung one (its threads: ${stopped.map((p) => `${p} ${threadStates(p)}`).join(', ')})`);
      assert.ok(await waitForExit(pid, 1_000), 'the hung one is gone');
    });

    it('a pid file naming a process that is no router is not adopted, and that process is left alone', async () => {
      const dir = folder();
      const router = make(dir);
      await router.start();
      await router.stop();
      writeFileSync(join(dir, kind.pidFile), `${process.pid}\n`);
      const next = make(dir);
      await next.start();
      assert.notEqual(next.pid, process.pid);
      assert.ok(next.pid && alive(next.pid));
    });

    it("a pid file naming another service's router (a pid reused after a reboot) is not adopted, and that router serves on", async () => {
      const other = make(folder());
      const { port } = await other.start();
      const dir = folder();
      const mine = make(dir);
      await mine.start();
      await mine.stop();
      writeFileSync(join(dir, kind.pidFile), `${other.pid}\n`);
      const again = make(dir);
      await again.start();
      assert.notEqual(again.pid, other.pid);
      assert.ok(alive(other.pid!), 'the other router was left alone');
      assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 503, 'and serves');
    });

    it('a router that runs elsewhere than asked is an error naming both addresses', async () => {
      const dir = folder();
      const first = make(dir);
      const { port } = await first.start();
      const other = await freePort();
      const second = make(dir, { ...http, port: other });
      await assert.rejects(second.start(), (error: unknown) => error instanceof RouterError && new RegExp(`already runs \\((haproxy )?pid ${first.pid}\\) on 127\\.0\\.0\\.1:${port} .*not as asked \\(127\\.0\\.0\\.1:${other}`).test((error as Error).message));
    });

    it('calls to a router that is gone fail with a RouterError naming it', async () => {
      const router = make(folder());
      await router.start();
      const pid = router.pid!;
      process.kill(pid, 'SIGKILL');
      assert.ok(await waitForExit(pid, 5_000));
      await assert.rejects(router.snapshot(), (error: unknown) => error instanceof RouterError && /the router of service 'web' \((haproxy )?pid \d+\) failed /.test((error as Error).message));
    });
  });
}

/** The state letter of each thread of a process (empty when it is gone). */
function threadStates(pid: number): string {
  try {
    return readdirSync(`/proc/${pid}/task`)
      .map((thread) => procStat(pid, thread)?.[0] ?? '')
      .join('');
  } catch {
    return '';
  }
}

/** True when every thread of a process is stopped (T), or the process is gone. */
function allThreadsStopped(pid: number): boolean {
  return /^T*$/.test(threadStates(pid));
}
