import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, sh, startServer as startImagoServer, stopServer } from '../support/cli.js';
import { writeHelloProject } from '../support/project.js';
import { freePort, getJson, waitFor } from '../support/net.js';

/** Runs the docker CLI; resolves with what it printed. */
const docker = (...args: string[]) => sh('docker', args);

describe('imago on the docker provider, from the command line', () => {
  const servers: ChildProcess[] = [];
  let home = '';

  after(() => cleanUpHome(home, servers, ['docker']));

  async function startServer(port: number): Promise<ChildProcess> {
    const child = await startImagoServer(home, port);
    servers.push(child);
    return child;
  }

  it('deploys, shows a docker exec in `imago status`, and a restarted server adopts the containers as they are', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-cli-docker-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-cli-docker-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    const listen = await freePort();
    await writeHelloProject(
      project,
      [
        '    replicas: 2',
        '    provider: docker',
        '    drift: report                # shown and kept, so a restart can be seen to keep it',
        `    listen: 127.0.0.1:${listen}`,
        '    health: { http: /healthz, interval: 100ms, startPeriod: 10s }',
        '    resources: { memory: 128Mi, pids: 64 }',
        '    drainTimeout: 1s',
        '    stopGrace: 2s',
      ],
      { hello: { host: ['node', 'busybox'], extra: ['    user: "1000:1000"', '    port: 8080'] } },
    );
    assert.equal((await imago(['bake'], { cwd: project, home })).code, 0);
    const apiPort = await freePort();
    let server = await startServer(apiPort);

    const deploy = await imago(['deploy', 'web'], { cwd: project, home });
    assert.equal(deploy.code, 0, deploy.stderr);
    assert.equal((await getJson<{ app: string }>(`http://127.0.0.1:${listen}/`)).body.app, 'hello');

    type Status = Array<{ provider: string; instances: Array<{ id: string; drift: string[]; startedAt: number }> }>;
    const status = async () => JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout) as Status;
    const [before] = await status();
    assert.equal(before!.provider, 'docker');
    assert.equal(before!.instances.length, 2);
    const target = before!.instances[0]!.id;
    const labels = await docker('inspect', target, '--format', '{{index .Config.Labels "imago.service"}} {{.HostConfig.Memory}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.PortBindings}}');
    const [service, memory, readOnly, bindings] = labels.trim().split(' ');
    assert.deepEqual([service, memory, readOnly], ['web', String(128 * 1024 ** 2), 'true']);
    const published = JSON.parse(bindings!) as Record<string, Array<{ HostIp: string; HostPort: string }>>;
    assert.deepEqual(Object.keys(published), ['8080/tcp'], 'the app listens on the image\'s port inside its container');
    assert.equal(published['8080/tcp']![0]!.HostIp, '127.0.0.1');

    await docker('exec', target, '/bin/sh', '-c', 'echo tampered > /tmp/x');
    await waitFor('status to show the exec', async () => ((await status())[0]!.instances.find((i) => i.id === target)?.drift.length ?? 0) > 0);
    const table = await imago(['status'], { cwd: project, home });
    assert.match(table.stdout, /DRIFTED/);
    assert.match(table.stdout, new RegExp(`${target} drifted: \\S+ docker exec: /bin/sh -c echo tampered > /tmp/x`));
    const drift = await imago(['drift', 'web'], { cwd: project, home });
    assert.equal(drift.code, 0, drift.stderr);
    assert.match(drift.stdout, new RegExp(`web\\s+${target}\\s+.*reported\\s+\\S+ docker exec: /bin/sh -c echo tampered`));
    const findings = JSON.parse((await imago(['drift', '--json'], { cwd: project, home })).stdout) as Array<{ instance: string; action: string }>;
    assert.deepEqual(findings.map((f) => [f.instance, f.action]), [[target, 'report']]);

    // A restart of the server: the same containers, not restarted, still drifted.
    await stopServer(server);
    server = await startServer(apiPort);
    const [adopted] = await status();
    assert.deepEqual(adopted!.instances.map((i) => [i.id, i.startedAt]).sort(), before!.instances.map((i) => [i.id, i.startedAt]).sort());
    assert.equal(adopted!.instances.find((i) => i.id === target)!.drift.length, 1);
    assert.equal((await getJson<{ app: string }>(`http://127.0.0.1:${listen}/`)).body.app, 'hello');
    await stopServer(server);
  });
});
