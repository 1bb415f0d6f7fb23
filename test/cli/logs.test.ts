import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, REPO, startServer } from '../support/cli.js';
import { freePort, waitFor } from '../support/net.js';
import { writeHelloProject } from '../support/project.js';

interface JsonLine {
  at: string;
  service: string;
  env: string;
  release: number;
  instance: string;
  stream: string;
  text: string;
}

for (const providerName of ['process', 'docker'] as const) {
  describe(`imago logs (${providerName} provider)`, () => {
    const servers: ChildProcess[] = [];
    const followers: ChildProcess[] = [];
    let home = '';
    after(async () => {
      for (const f of followers) if (f.exitCode === null && f.signalCode === null) f.kill('SIGKILL');
      await cleanUpHome(home, servers, [providerName]);
    });

    it("keeps a replaced release's lines after its instances are gone, and -f follows across a deploy", async () => {
      home = await mkdtemp(join(tmpdir(), `imago-logs-${providerName}-`));
      const project = await mkdtemp(join(tmpdir(), 'imago-logs-project-'));
      after(() => rm(project, { recursive: true, force: true }));
      const service = ['    replicas: 2', `    provider: ${providerName}`, `    listen: 127.0.0.1:${await freePort()}`, '    health: { http: /healthz, interval: 100ms, startPeriod: 20s }', '    stopGrace: 3s'];
      await writeHelloProject(project, service, { hello: { host: ['node', 'busybox'] }, hello2: { host: ['node', 'busybox'], extra: ['    env: { APP_VERSION: "2" }'] } });
      const baked = await imago(['bake'], { cwd: project, home });
      assert.equal(baked.code, 0, baked.stderr);
      servers.push(await startServer(home, await freePort(), ['--env', 'staging']));
      const run = (args: string[]) => imago(args, { cwd: project, home });
      const jsonLines = async (args: string[]) => {
        const r = await run(['logs', 'web', '--json', ...args]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JsonLine);
      };

      assert.equal((await run(['deploy', 'web'])).code, 0);
      const firstIds = new Set((await jsonLines([])).map((l) => l.instance));
      await waitFor('both instances of release 1 said they listen', async () => (await jsonLines(['--release', '1', '--grep', 'listening'])).length === 2, 10_000);

      // A follower from here on: it must see release 2's instances start, without being run again.
      const follower = spawn(process.execPath, [join(REPO, 'bin', 'imago.js'), '--home', home, 'logs', 'web', '-f', '--json', '--tail', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      followers.push(follower);
      let followed = '';
      follower.stdout!.on('data', (d: Buffer) => (followed += d.toString()));

      const second = await run(['deploy', 'web', '--image', 'hello2']);
      assert.equal(second.code, 0, second.stderr);
      // Release 1's instances are gone; their lines are not.
      const ones = await jsonLines(['--release', '1']);
      assert.deepEqual(new Set(ones.filter((l) => /listening/.test(l.text)).map((l) => l.instance)).size, 2);
      await waitFor('release 1 said SIGTERM: closing as it was stopped', async () => (await jsonLines(['--release', '1', '--grep', 'SIGTERM: closing'])).length === 2, 15_000);
      for (const l of ones) {
        assert.equal(l.service, 'web');
        assert.equal(l.env, 'staging');
        assert.equal(l.stream, /SIGTERM/.test(l.text) ? 'stderr' : 'stdout', `${l.text}: on the stream it was printed on`);
        assert.ok(firstIds.has(l.instance), `${l.instance} is one of release 1's`);
        assert.ok(Math.abs(Date.parse(l.at) - Date.now()) < 120_000, `a recent time: ${l.at}`);
      }
      await waitFor('the follower printed release 2 starting', () => followed.split('\n').filter((l) => l.includes('"hello 2 listening')).length === 2, 10_000);
      const seen = followed.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JsonLine);
      assert.ok(seen.every((l) => l.release !== 1 || /SIGTERM|closing/.test(l.text)), 'the follower printed nothing from before it started but release 1 stopping');
      // Each line once, in order.
      const texts = seen.map((l) => `${l.instance} ${l.text}`);
      assert.equal(new Set(texts).size, texts.length, 'no line twice');
      follower.kill('SIGTERM');

      // Plain text, a tail, a time window, and clear errors.
      const plain = await run(['logs', 'web', '--tail', '1', '--grep', 'hello 2 listening']);
      assert.match(plain.stdout.trim(), /^\d{4}-\d\d-\d\dT\S+Z r2 web-r\d+-\w+ hello 2 listening on /);
      assert.equal((await jsonLines(['--since', '10m', '--grep', 'listening'])).length, 4);
      assert.equal((await jsonLines(['--until', '2000-01-01T00:00:00Z'])).length, 0);
      const errors = await jsonLines(['--release', '1', '--stream', 'stderr']);
      assert.deepEqual(errors.map((l) => l.text.replace(/ .*/, '')), ['SIGTERM:', 'SIGTERM:'], 'only what release 1 printed on stderr');
      const badStream = await run(['logs', 'web', '--stream', 'both']);
      assert.equal(badStream.code, 2);
      assert.match(badStream.stderr, /--stream: expected stdout or stderr, got 'both'/);
      const bad = await run(['logs', 'web', '--since', 'yesterday']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--since: expected a duration back from now .* got 'yesterday'/);
      const none = await run(['logs', 'nope']);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /no service 'nope'/);
    });
  });
}

describe('imago server --syslog', () => {
  it('refuses a target that is not tcp:// or tls://, and a CA without TLS, before it starts', async () => {
    const home = await mkdtemp(join(tmpdir(), 'imago-syslog-flag-'));
    after(() => rm(home, { recursive: true, force: true }));
    const bad = await imago(['server', '--syslog', 'udp://127.0.0.1:514'], { home });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--syslog: expected tcp:\/\/host:port or tls:\/\/host:port .* got 'udp:\/\/127\.0\.0\.1:514'/);
    const ca = await imago(['server', '--syslog', 'tcp://127.0.0.1:514', '--syslog-ca', '/nonexistent.pem'], { home });
    assert.equal(ca.code, 2);
    assert.match(ca.stderr, /--syslog-ca: only with a tls:\/\/ --syslog target/);
  });
});

