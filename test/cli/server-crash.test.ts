import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, REPO } from '../support/cli.js';
import { writeHelloProject } from '../support/project.js';
import { freePort, waitFor } from '../support/net.js';

/** An app that answers its health check only 3 s after start: a deploy of it takes a while. */
const SLOW_APP = "const http=require('http');const t=Date.now();http.createServer((q,s)=>{if(q.url==='/healthz'){s.writeHead(Date.now()-t>3000?200:503);return s.end()}s.end(JSON.stringify({version:'slow'}))}).listen(Number(process.env.PORT),'127.0.0.1')";

describe('a control plane killed with SIGKILL in the middle of a deploy', () => {
  const children: ChildProcess[] = [];
  let home = '';

  after(() => cleanUpHome(home, children, ['process']));

  const spawnImago = (args: string[], cwd: string): ChildProcess => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'imago.js'), '--home', home, ...args], { cwd, stdio: 'ignore' });
    children.push(child);
    return child;
  };
  const status = async (cwd: string) => JSON.parse((await imago(['status', '--json'], { cwd, home })).stdout || '[]') as Array<{ live: { version: number } | null; instances: Array<{ id: string; release: number; routed: boolean }> }>;

  it('loses no record: the next one aborts the deploy, the fleet goes back to the live release, and deploys work again', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-crash-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-crash-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    await writeHelloProject(project, ['    replicas: 2', '    health: { http: /healthz, interval: 100ms, startPeriod: 20s }', '    drainTimeout: 2s', '    stopGrace: 2s'], {
      hello: {},
      slow: { cmd: ['-e', SLOW_APP] },
    });
    assert.equal((await imago(['bake'], { cwd: project, home })).code, 0);
    const api = await freePort();
    const startServer = async () => {
      const server = spawnImago(['server', '--listen', `127.0.0.1:${api}`], project);
      await waitFor('the server', () => fetch(`http://127.0.0.1:${api}/v1/ping`).then((r) => r.ok).catch(() => false), 20_000);
      return server;
    };

    let server = await startServer();
    const first = await imago(['deploy', 'web'], { cwd: project, home });
    assert.equal(first.code, 0, first.stderr);

    spawnImago(['deploy', 'web', '--image', 'slow'], project);
    await waitFor('an instance of release 2', async () => (await status(project))[0]?.instances.some((i) => i.release === 2) ?? false, 20_000);
    server.kill('SIGKILL');
    await new Promise((resolve) => server.once('exit', resolve));

    server = await startServer();
    await waitFor('the fleet back on release 1', async () => {
      const [web] = await status(project);
      return web?.live?.version === 1 && web.instances.length === 2 && web.instances.every((i) => i.release === 1 && i.routed);
    }, 30_000);
    const history = JSON.parse((await imago(['history', 'web', '--json'], { cwd: project, home })).stdout) as Array<{ version: number; status: string; reason?: string }>;
    assert.deepEqual(history.map((r) => `${r.version}:${r.status}`), ['2:failed', '1:live']);
    assert.match(history[0]!.reason ?? '', /control plane stopped during this deploy/);

    const again = await imago(['deploy', 'web', '--image', 'slow'], { cwd: project, home });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /release 3 live/);
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
  });
});
