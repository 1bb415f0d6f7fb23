import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, cliIn, filesUnder, REPO, sh, startServer } from '../support/cli.js';
import { freePort, getJson } from '../support/net.js';

/** The command line of every process on this machine (what `ps` shows). */
async function commandLines(): Promise<string> {
  const lines: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const text = await readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
    if (text) lines.push(text.toString().replace(/\0/g, ' '));
  }
  return lines.join('\n');
}

for (const provider of ['process', 'docker'] as const) {
  describe(`secrets on the ${provider} provider`, () => {
    const servers: ChildProcess[] = [];
    let home = '';
    after(() => cleanUpHome(home, servers, [provider]));

    it('a release runs with the secret versions it was made with, a rollback brings the old value back, and the value is found nowhere but inside the instance', async () => {
      home = await mkdtemp(join(tmpdir(), `imago-secrets-${provider}-`));
      const project = await mkdtemp(join(tmpdir(), 'imago-secrets-project-'));
      after(() => rm(project, { recursive: true, force: true }));
      // A process gets one secret as a variable; docker gives secrets as files only.
      const asEnv = provider === 'process';
      await writeFile(
        join(project, 'imago.yaml'),
        [
          'images:',
          '  app:',
          `    context: ${join(REPO, 'test', 'fixtures')}`,
          '    from: { host: [node] }',
          '    copy: [{ src: instance-app.mjs, dest: /app/app.mjs }]',
          '    entrypoint: [/usr/bin/node, /app/app.mjs]',
          '    user: "1000:1000"',
          '    port: 8080',
          'services:',
          '  web:',
          '    image: app',
          `    provider: ${provider}`,
          '    health: { http: /, interval: 100ms }',
          '    secrets:',
          asEnv ? '      db-password: { env: DB_PASSWORD }' : '      db-password: { file: /run/secrets/db-password }',
          '      tls-key: { file: /run/secrets/tls-key }',
          'environments:',
          '  prod: {}',
          '',
        ].join('\n'),
      );
      const { run, ok } = cliIn(project, home);
      const one = `one-${randomBytes(12).toString('hex')}`;
      const two = `two-${randomBytes(12).toString('hex')}`;
      const key = `key-${randomBytes(12).toString('hex')}`;
      await ok(['bake']);
      servers.push(await startServer(home, await freePort()));

      const unset = await run(['deploy', 'web']);
      assert.notEqual(unset.code, 0);
      assert.match(unset.stderr, /secret "db-password" is not set in prod: set it with `imago secret set prod db-password`/);
      assert.match((await ok(['secret', 'set', 'prod', 'db-password'], { input: `${one}\n` })).stdout, /prod\/db-password: version 1 stored/);
      await ok(['secret', 'set', 'prod', 'tls-key'], { input: key });

      const url = async () => (JSON.parse((await ok(['status', '--json'])).stdout) as Array<{ service: string; url: string }>).find((s) => s.service === 'web@prod')!.url;
      const password = async () => {
        const base = await url();
        return asEnv ? (await getJson<{ value: string }>(`${base}/env?name=DB_PASSWORD`)).body.value : (await getJson<{ data: string }>(`${base}/read?path=/run/secrets/db-password`)).body.data;
      };
      await ok(['deploy', 'web']);
      assert.equal(await password(), one, 'the value, without the newline echo added');
      assert.equal((await getJson<{ data: string }>(`${await url()}/read?path=/run/secrets/tls-key`)).body.data, key);
      assert.deepEqual((await getJson<{ mode: string; uid: number }>(`${await url()}/stat?path=/run/secrets/tls-key`)).body, { mode: '400', uid: 1000 });

      // A new version is a new release; a rollback runs with the version its release had.
      await ok(['secret', 'set', 'prod', 'db-password'], { input: two });
      assert.match((await ok(['deploy', 'web'])).stdout, /^web@prod: release 2 live/);
      assert.equal(await password(), two);
      assert.match((await ok(['rollback', 'web'])).stdout, /rolled back as release 3 live/);
      assert.equal(await password(), one);
      const history = JSON.parse((await ok(['history', 'web', '--json'])).stdout) as Array<{ version: number; secrets: { versions: Record<string, number> } }>;
      assert.deepEqual(history.map((r) => [r.version, r.secrets.versions['db-password']]), [[3, 1], [2, 2], [1, 1]]);

      // Nowhere but inside the instance: not a file of the state folder, a log line, the
      // ledger, an API answer, a command line, or what the engine shows of the container.
      const secrets = [one, two, key];
      const seen: Array<[string, string]> = [];
      for (const [path, bytes] of await filesUnder(home)) for (const s of secrets) if (bytes.includes(s)) seen.push([path, s]);
      const answers = await Promise.all([
        ['status', '--json'], ['history', 'web', '--json'], ['logs', 'web', '--json'], ['ledger', '--json'], ['secret', 'ls', '--json'], ['drift', '--json'],
      ].map(async (args) => [args.join(' '), (await ok(args)).stdout] as const));
      for (const [what, text] of answers) for (const s of secrets) if (text.includes(s)) seen.push([what, s]);
      const ps = await commandLines();
      for (const s of secrets) if (ps.includes(s)) seen.push(['a command line', s]);
      if (provider === 'docker') {
        const ids = (await sh('docker', ['ps', '-aq', '--filter', 'label=imago.service=web@prod'])).split('\n').filter(Boolean);
        assert.ok(ids.length > 0);
        const inspect = await sh('docker', ['inspect', ...ids]);
        for (const s of secrets) if (inspect.includes(s)) seen.push(['docker inspect', s]);
      }
      assert.deepEqual(seen, [], 'the values were found outside the instance');

      // Removed: no deploy takes it; versions no running release uses are gone.
      const removed = await ok(['secret', 'rm', 'prod', 'db-password', '--json']);
      assert.deepEqual(JSON.parse(removed.stdout), { env: 'prod', name: 'db-password', deleted: 1, kept: 1 });
      const gone = await run(['deploy', 'web', '--force']);
      assert.notEqual(gone.code, 0);
      assert.match(gone.stderr, /secret "db-password" is removed in prod/);
    });
  });
}
