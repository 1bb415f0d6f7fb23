/**
 * A machine restarting, as imago sees it: the control plane and every instance gone at once
 * (SIGKILL), then `imago server` started again (as systemd does at boot) — the fleet comes
 * back at full capacity with no command. And the shipped systemd unit is one systemd accepts.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { childrenOf } from '../../src/util/pids.js';
import { cleanUpHome, imago, REPO, sh, startServer } from '../support/cli.js';
import { writeHelloProject } from '../support/project.js';
import { freePort, getJson, waitFor } from '../support/net.js';
import { tempDir } from '../support/temp.js';

describe('a reboot of the machine', () => {
  const servers: ChildProcess[] = [];
  let home = '';

  after(() => cleanUpHome(home, servers, ['process']));

  it('brings the fleet back at full capacity with no command', async () => {
    // Not tempDir(): its hook would remove the home before the instances in it are destroyed.
    home = await mkdtemp(join(tmpdir(), 'imago-reboot-'));
    const project = await tempDir('imago-reboot-project-');
    const listen = await freePort();
    await writeHelloProject(project, ['    replicas: 3', `    listen: 127.0.0.1:${listen}`, '    health: { http: /healthz, interval: 200ms, startPeriod: 10s }']);
    assert.equal((await imago(['bake'], { cwd: project, home })).code, 0);
    const api = await freePort();
    const first = await startServer(home, api);
    servers.push(first);
    const deployed = await imago(['deploy', 'web'], { cwd: project, home });
    assert.equal(deployed.code, 0, deployed.stderr);
    type Status = Array<{ router: { pid: number }; instances: Array<{ id: string; routed: boolean; health: string }> }>;
    const status = async () => JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout || '[]') as Status;
    const [web] = await status();
    const before = web!.instances.map((i) => i.id);
    // The router's process and those it started (HAProxy's worker).
    const routerPid = web!.router.pid;
    const routerProcesses = childrenOf(routerPid);
    assert.equal(before.length, 3);

    // The power goes: the control plane, its router and every instance die at once.
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    for (const pid of [routerPid, ...routerProcesses]) process.kill(pid, 'SIGKILL');
    for (const id of before) {
      const record = JSON.parse(await readFile(join(home, 'instances', `${id}.json`), 'utf8')) as { pid: number };
      process.kill(-record.pid, 'SIGKILL');
    }
    await waitFor('the router and instances gone', async () => (await fetch(`http://127.0.0.1:${listen}/`).then(() => false, () => true)), 10_000);

    // The machine is back: systemd starts `imago server`; nobody runs a command.
    servers.push(await startServer(home, api));
    await waitFor('3 new instances healthy and routed', async () => {
      const [web] = await status();
      return web?.instances.length === 3 && web.instances.every((i) => i.routed && i.health === 'healthy' && !before.includes(i.id));
    }, 30_000);
    assert.equal((await getJson<{ app: string }>(`http://127.0.0.1:${listen}/`)).body.app, 'hello');
  });

  it('ships a systemd unit that systemd accepts, which leaves instances running when it stops the server', async () => {
    const unit = await readFile(join(REPO, 'contrib', 'systemd', 'imago.service'), 'utf8');
    assert.match(unit, /^KillMode=process$/m);
    assert.match(unit, /^Restart=always$/m);
    assert.match(unit, /^WantedBy=multi-user\.target$/m);
    // systemd-analyze checks it; the CLI's path is this checkout's for the check.
    const dir = await tempDir('imago-unit-');
    const file = join(dir, 'imago.service');
    await writeFile(file, unit.replace(/^ExecStart=\S+/m, `ExecStart=${join(REPO, 'bin', 'imago.js')}`));
    const output = await sh('systemd-analyze', ['verify', file]).catch((error: Error) => error.message);
    assert.equal(output.trim(), '', output);
    await rm(dir, { recursive: true, force: true });
  });
});
