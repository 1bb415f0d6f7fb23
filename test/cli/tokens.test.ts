import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, cliIn, filesUnder, startServer } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { helloImage } from '../support/project.js';

describe('named API tokens with scopes', () => {
  const servers: ChildProcess[] = [];
  let home = '';
  after(() => cleanUpHome(home, servers, ['process']));

  it('a read token cannot deploy, a deploy:staging token cannot touch prod, the ledger names the token, a revoked one is refused, and no token is stored', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-tokens-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-tokens-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    await writeFile(
      join(project, 'imago.yaml'),
      [
        'images:',
        ...helloImage('hello'),
        'services:',
        '  web:',
        '    image: hello',
        '    health: { http: /healthz, interval: 100ms }',
        'defaultEnvironment: staging',
        'environments:',
        '  staging: {}',
        '  prod: { services: { web: { replicas: 2 } } }',
        '',
      ].join('\n'),
    );
    const { run, ok } = cliIn(project, home);
    await ok(['bake']);
    servers.push(await startServer(home, await freePort()));
    await ok(['deploy', 'web']); // the state folder's own token: admin

    const badScope = await run(['token', 'create', 'x', '--scope', 'deploy:Prod']);
    assert.equal(badScope.code, 2);
    assert.match(badScope.stderr, /--scope: expected deploy:<env> with an environment name/);
    const reader = (await ok(['token', 'create', 'reader', '--scope', 'read'])).stdout.trim();
    const ci = (await ok(['token', 'create', 'ci', '--scope', 'deploy:staging'])).stdout.trim();
    assert.match(ci, /^imago_[A-Za-z0-9_-]{43}$/);
    const again = await run(['token', 'create', 'ci', '--scope', 'read']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /token "ci" exists already/);
    const history = async () => (JSON.parse((await ok(['history', 'web', '--json'])).stdout) as unknown[]).length;
    const releases = await history();

    // read: reads, and nothing more.
    await ok(['status', '--json'], { token: reader });
    await ok(['history', 'web', '--json'], { token: reader });
    const refused = await run(['deploy', 'web', '--force'], { token: reader });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /token 'reader' \(scopes: read\) may not deploy 'web' in staging: that needs deploy:staging or admin/);
    assert.equal(await history(), releases, 'nothing changed');

    // deploy:staging: staging, not prod.
    assert.match((await ok(['deploy', 'web', '--force'], { token: ci })).stdout, /^web@staging: release 2 live/);
    const ledger = JSON.parse((await ok(['ledger', '--service', 'web@staging', '--json'])).stdout) as Array<{ kind: string; actor: string }>;
    assert.equal(ledger.filter((e) => e.kind === 'release.created').at(-1)!.actor, 'ci', "the ledger's actor is the token's name");
    for (const args of [['deploy', 'web', '--env', 'prod'], ['promote', 'web', '--from', 'staging', '--to', 'prod'], ['scale', 'web', '3', '--env', 'prod']]) {
      const denied = await run(args, { token: ci });
      assert.notEqual(denied.code, 0, args.join(' '));
      assert.match(denied.stderr, /token 'ci' \(scopes: deploy:staging\) may not .* in prod: that needs deploy:prod or admin/, args.join(' '));
    }
    const status = JSON.parse((await ok(['status', '--json'])).stdout) as Array<{ service: string }>;
    assert.deepEqual(status.map((s) => s.service), ['web@staging'], 'prod was never made');

    // Only hashes are kept: no file of the state folder holds a token, and ls shows none.
    const listed = (await ok(['token', 'ls', '--json'])).stdout;
    assert.ok(!listed.includes(ci) && !listed.includes(reader));
    assert.match(listed, /"name": "ci"/);
    for (const [path, bytes] of await filesUnder(home)) {
      assert.ok(!bytes.includes(ci) && !bytes.includes(reader), `a token is in ${path}`);
    }

    // Revoked: refused from the next request on.
    await ok(['token', 'revoke', 'ci']);
    const revoked = await run(['status'], { token: ci });
    assert.notEqual(revoked.code, 0);
    assert.match(revoked.stderr, /missing, wrong or revoked API token/);
    await ok(['status'], { token: reader });
  });
});
