import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Agent, fetch } from 'undici';
import { selfSigned } from '../support/backends.js';
import { cleanUpHome, imago, sh, startServer, stopServer } from '../support/cli.js';
import { freePort, waitFor } from '../support/net.js';
import { helloImage } from '../support/project.js';

/** Runs redis-benchmark to its end: its exit code and what it printed. */
function redisBenchmark(port: number, requests: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    // -k 0: a new connection for every request, so each is balanced anew (a long-lived one stays on its instance until it drains).
    const child = spawn('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-n', String(requests), '-c', '8', '-k', '0', '-t', 'set,get', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

describe('services that are not plain HTTP: TCP (Redis) and TLS', () => {
  const servers: ChildProcess[] = [];
  let home = '';

  after(() => cleanUpHome(home, servers, ['process']));

  it('a Redis with a volume behind a TCP router answers redis-cli, and redis-benchmark through it sees no error during a rolling deploy; TLS is terminated with files relative to the config; bad TLS files fail the deploy, saying which', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-protocols-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-protocols-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    const good = selfSigned(project, 'web');
    selfSigned(project, 'other'); // a key that matches no certificate of this service
    const [cachePort, securePort, brokenPort] = [await freePort(), await freePort(), await freePort()];
    const redis = 'exec /usr/bin/redis-server --port "$PORT" --bind "$HOST" --dir /data --save "" --appendonly no --protected-mode no';
    await writeFile(
      join(project, 'imago.yaml'),
      [
        'images:',
        '  redis:',
        `    context: ${project}`,
        '    from: { host: [redis-server, busybox] }',
        '    entrypoint: [/bin/sh, -c]',
        `    cmd: [${JSON.stringify(redis)}]`,
        ...helloImage('hello'),
        'services:',
        '  cache:',
        '    image: redis',
        '    replicas: 2',
        '    protocol: tcp',
        `    listen: 127.0.0.1:${cachePort}`,
        '    volumes: { data: /data }',
        '    drainTimeout: 2s',
        '    stopGrace: 2s',
        '  secure:',
        '    image: hello',
        '    replicas: 2',
        `    listen: { address: "127.0.0.1:${securePort}", tls: { cert: web.crt, key: web.key } }`,
        '    health: { http: /healthz, interval: 100ms }',
        '  broken:',
        '    image: hello',
        `    listen: { address: "127.0.0.1:${brokenPort}", tls: { cert: web.crt, key: other.key } }`,
        '',
      ].join('\n'),
    );
    const baked = await imago(['bake'], { cwd: project, home });
    assert.equal(baked.code, 0, baked.stderr);
    const server = await startServer(home, await freePort());
    servers.push(server);

    const first = await imago(['deploy', 'cache'], { cwd: project, home });
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await sh('redis-cli', ['-h', '127.0.0.1', '-p', String(cachePort), 'ping'])).trim(), 'PONG');
    assert.equal((await sh('redis-cli', ['-h', '127.0.0.1', '-p', String(cachePort), 'set', 'k', 'v'])).trim(), 'OK');

    const deploying = imago(['deploy', 'cache', '--force'], { cwd: project, home });
    let done = false;
    void deploying.finally(() => (done = true));
    const runs: Array<{ code: number; output: string }> = [];
    while (!done || runs.length === 0) runs.push(await redisBenchmark(cachePort, 2_000));
    const deployed = await deploying;
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, /release 2 live/);
    for (const run of runs) {
      assert.equal(run.code, 0, run.output);
      assert.doesNotMatch(run.output, /error|closed/i, run.output);
      assert.match(run.output, /SET: [\d.]+ requests per second/);
    }

    const secure = await imago(['deploy', 'secure'], { cwd: project, home });
    assert.equal(secure.code, 0, secure.stderr);
    const dispatcher = new Agent({ connect: { ca: good.certPem } });
    after(() => dispatcher.close());
    const res = await fetch(`https://127.0.0.1:${securePort}/`, { dispatcher });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { app: string }).app, 'hello');

    const broken = await imago(['deploy', 'broken'], { cwd: project, home });
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr, /services\.broken\.listen\.tls: .*other\.key' does not match the certificate in '.*web\.crt'/);
    const status = JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout) as Array<{ service: string }>;
    assert.deepEqual(status.map((s) => s.service).sort(), ['cache', 'secure'], 'nothing of the broken one was made');
    await waitFor('the broken port still free', () => fetch(`http://127.0.0.1:${brokenPort}/`).then(() => false, () => true), 2_000);
    await stopServer(server);
  });
});
