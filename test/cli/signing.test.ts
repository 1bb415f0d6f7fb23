import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, cliIn, startServer } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { helloImage } from '../support/project.js';

describe('signed images and the policy of an environment', () => {
  const servers: ChildProcess[] = [];
  let home = '';
  after(() => cleanUpHome(home, servers, ['process']));

  it('a bake is signed and verifies; another key does not; prod, trusting only another key, refuses it and nothing changes', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-signing-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-signing-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    await writeFile(join(project, 'other.pub'), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(
      join(project, 'imago.yaml'),
      [
        'images:',
        ...helloImage('hello'),
        'services:',
        '  web:',
        '    image: hello',
        '    health: { http: /healthz, interval: 100ms }',
        'environments:',
        '  staging: { requireSignature: { keys: [ours.pub] } }',
        '  prod: { requireSignature: { keys: [other.pub] } }',
        '  qa: { requireSignature: { keys: [missing.pub] } }',
        '',
      ].join('\n'),
    );
    const { run } = cliIn(project, home);
    const bake = await run(['bake']);
    assert.equal(bake.code, 0, bake.stderr);
    await copyFile(join(home, 'keys', 'signing.pub'), join(project, 'ours.pub'));

    const verified = await run(['image', 'verify', 'hello']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /^verified sha256:[0-9a-f]{64}: signed by key [0-9a-f]{16}; built by https:\/\/imago\.dev\/imago@\S+ at \S+ from spec sha256:/);
    const json = JSON.parse((await run(['image', 'verify', 'hello', '--json'])).stdout) as { verified: boolean; statement: { predicateType: string } };
    assert.deepEqual([json.verified, json.statement.predicateType], [true, 'https://slsa.dev/provenance/v1']);
    const stranger = await run(['image', 'verify', 'hello', '--key', join(project, 'other.pub')]);
    assert.equal(stranger.code, 1);
    assert.match(stranger.stderr, /not verified: image sha256:[0-9a-f]{64}: signed by key [0-9a-f]{16}, which is not among the 1 trusted key/);

    servers.push(await startServer(home, await freePort()));
    const staged = await run(['deploy', 'web', '--env', 'staging']);
    assert.equal(staged.code, 0, staged.stderr);
    const refused = await run(['deploy', 'web', '--env', 'prod']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cannot deploy web@prod: its environment requires a signature by one of 1 key\(s\), and image sha256:[0-9a-f]{64}: signed by key/);
    const promoted = await run(['promote', 'web', '--from', 'staging', '--to', 'prod', '--force', '--reason', 'try']);
    assert.notEqual(promoted.code, 0, '--force does not set a signature policy aside');
    assert.match(promoted.stderr, /requires a signature/);
    const status = JSON.parse((await run(['status', '--json'])).stdout) as Array<{ service: string }>;
    assert.deepEqual(status.map((s) => s.service), ['web@staging'], 'prod was never made');
    const missing = await run(['deploy', 'web', '--env', 'qa']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /environments\.qa\.requireSignature\.keys: cannot read .*missing\.pub: ENOENT/);
  });
});
