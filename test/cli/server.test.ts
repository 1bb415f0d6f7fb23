import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, startServer as startImagoServer, stopServer } from '../support/cli.js';
import { writeHelloProject } from '../support/project.js';
import { freePort, getJson, waitFor } from '../support/net.js';

describe('imago server, deploy, status, history, rollback (the CLI as users run it)', () => {
  const servers: ChildProcess[] = [];
  let home = '';

  after(() => cleanUpHome(home, servers, ['process']));

  /** Starts `imago server` in the background; the after hook kills what is left. */
  async function startServer(port: number): Promise<ChildProcess> {
    const child = await startImagoServer(home, port);
    servers.push(child);
    return child;
  }

  it('runs the whole loop from the command line', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-cli-server-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-cli-project-'));
    const listen = await freePort();
    await writeHelloProject(
      project,
      ['    replicas: 2', `    listen: 127.0.0.1:${listen}`, '    health: { http: /healthz, interval: 100ms, startPeriod: 10s }', '    drainTimeout: 2s', '    stopGrace: 2s'],
      { hello: { extra: ['    env: { APP_VERSION: "1" }'] } },
    );
    after(() => rm(project, { recursive: true, force: true }));
    assert.equal((await imago(['bake'], { cwd: project, home })).code, 0);

    const none = await imago(['status'], { cwd: project, home });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no imago server is running for state folder/);

    const apiPort = await freePort();
    const server = await startServer(apiPort);

    const plan = await imago(['plan', 'web'], { cwd: project, home });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /web: rolling to sha256:/);
    assert.match(plan.stdout, /shift traffic: \+2 new, -0 old/);

    const deployed = await imago(['deploy', 'web'], { cwd: project, home });
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, /^web: release 1 live/);
    assert.equal((await getJson<{ version: string }>(`http://127.0.0.1:${listen}/`)).body.version, '1');

    const status = JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout);
    assert.equal(status[0].service, 'web');
    assert.equal(status[0].instances.length, 2);

    const wrongToken = await imago(['status'], { cwd: project, home, env: { IMAGO_TOKEN: 'f'.repeat(64) } });
    assert.equal(wrongToken.code, 2);
    assert.match(wrongToken.stderr, /missing, wrong or revoked API token/);

    const noEarlier = await imago(['rollback', 'web'], { cwd: project, home });
    assert.equal(noEarlier.code, 2);
    assert.match(noEarlier.stderr, /no earlier good release to roll back to/);

    const unknownService = await imago(['deploy', 'api'], { cwd: project, home });
    assert.equal(unknownService.code, 2);
    assert.match(unknownService.stderr, /unknown service "api": expected one of web/);

    // The server stops; the instances keep serving; a new server adopts them.
    await stopServer(server);
    const before = JSON.parse(await readFile(join(home, 'instances', `${status[0].instances[0].id}.json`), 'utf8')).pid;
    assert.ok(before > 0);
    await startServer(apiPort);
    await waitFor('the adopted instances to be routed again', async () => {
      const s = JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout);
      return s[0]?.instances.length === 2 && s[0].instances.every((i: { routed: boolean }) => i.routed);
    }, 20_000);
    const after2 = JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout);
    assert.deepEqual(after2[0].instances.map((i: { id: string }) => i.id).sort(), status[0].instances.map((i: { id: string }) => i.id).sort(), 'adopted, not restarted');

    const history = JSON.parse((await imago(['history', 'web', '--json'], { cwd: project, home })).stdout);
    assert.deepEqual(history.map((r: { version: number; status: string }) => `${r.version}:${r.status}`), ['1:live']);
  });
});
