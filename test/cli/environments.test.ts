import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, cliIn, startServer } from '../support/cli.js';
import { freePort, getJson } from '../support/net.js';
import { helloImage } from '../support/project.js';

interface Status {
  service: string;
  name: string;
  env: string;
  url: string;
  live: { version: number; digest: string } | null;
  instances: Array<{ id: string; startedAt: number }>;
}

interface Release {
  version: number;
  status: string;
  digest: string;
  promotedFrom?: { env: string; service: string; version: number };
}

describe('environments and promotion (process provider)', () => {
  const servers: ChildProcess[] = [];
  let home = '';
  after(() => cleanUpHome(home, servers, ['process']));

  it('runs dev and prod of one service apart, promotes dev → staging → prod with the same digest, and refuses what failed, soaked too briefly or was revoked', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-envs-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-envs-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    const prodPort = await freePort();
    await writeFile(
      join(project, 'imago.yaml'),
      [
        'images:',
        ...helloImage('hello'),
        // The same app, another digest: what prod runs before the promotion.
        ...helloImage('hello-old', { extra: ['    labels: { release: old }'] }),
        // An image whose app exits at once: it never passes its health gate.
        ...helloImage('broken', { cmd: ['-e', 'process.exit(3)'] }),
        'services:',
        '  web:',
        '    image: hello',
        '    replicas: 1',
        '    env: { APP_VERSION: base }',
        '    health: { http: /healthz, interval: 100ms }',
        'defaultEnvironment: dev',
        'environments:',
        '  dev:',
        '    services: { web: { env: { APP_VERSION: dev } } }',
        '  staging:',
        '    services: { web: { replicas: 2, deployTimeout: 20s, env: { APP_VERSION: staging } } }',
        '  prod:',
        '    minSoak: 1h',
        `    services: { web: { replicas: 2, listen: "127.0.0.1:${prodPort}", env: { APP_VERSION: prod } } }`,
        '',
      ].join('\n'),
    );
    const { run, ok } = cliIn(project, home);
    const status = async () => JSON.parse((await ok(['status', '--json'])).stdout) as Status[];
    const of = async (key: string) => (await status()).find((s) => s.service === key)!;
    const answer = async (url: string) => (await getJson<{ version: string }>(url)).body.version;
    const history = async (env: string) => JSON.parse((await ok(['history', 'web', '--env', env, '--json'])).stdout) as Release[];

    await ok(['bake']);
    servers.push(await startServer(home, await freePort()));

    // dev (the config's default) and prod side by side: their own instances, routers, replicas and env.
    assert.match((await ok(['deploy', 'web'])).stdout, /^web@dev: release 1 live/);
    assert.match((await ok(['deploy', 'web', '--env', 'prod', '--image', 'hello-old'])).stdout, /^web@prod: release 1 live/);
    const dev = await of('web@dev');
    const prod = await of('web@prod');
    assert.deepEqual([dev.name, dev.env, prod.name, prod.env], ['web', 'dev', 'web', 'prod']);
    assert.equal(prod.url, `http://127.0.0.1:${prodPort}`);
    assert.notEqual(dev.url, prod.url);
    assert.deepEqual([dev.instances.length, prod.instances.length], [1, 2]);
    assert.deepEqual([await answer(dev.url), await answer(prod.url)], ['dev', 'prod']);
    assert.notEqual(dev.live!.digest, prod.live!.digest);

    // A change to dev touches nothing of prod.
    await ok(['scale', 'web', '3']);
    assert.equal((await of('web@dev')).instances.length, 3);
    assert.deepEqual((await of('web@prod')).instances.map((i) => [i.id, i.startedAt]), prod.instances.map((i) => [i.id, i.startedAt]));
    const prodLines = JSON.parse(`[${(await ok(['logs', 'web', '--env', 'prod', '--json'])).stdout.trim().split('\n').join(',')}]`) as Array<{ env: string; instance: string }>;
    assert.ok(prodLines.length >= 2, 'each prod instance said it listens');
    assert.deepEqual(new Set(prodLines.map((l) => l.env)), new Set(['prod']));
    assert.ok(prodLines.every((l) => prod.instances.some((i) => i.id === l.instance)));

    // dev → staging: the same digest, its origin in the history.
    assert.match((await ok(['promote', 'web', '--from', 'dev', '--to', 'staging'])).stdout, /^web@staging: release 1 live from web@dev release 1/);
    const staging = await of('web@staging');
    assert.equal(staging.live!.digest, dev.live!.digest);
    assert.equal(await answer(staging.url), 'staging');
    assert.deepEqual((await history('staging'))[0]!.promotedFrom, { env: 'dev', service: 'web@dev', version: 1 });

    // A release that failed in staging cannot be promoted; prod is untouched.
    const failed = await run(['deploy', 'web', '--env', 'staging', '--image', 'broken']);
    assert.equal(failed.code, 1, `deploy of broken: ${failed.stdout}${failed.stderr}`);
    const refused = await run(['promote', 'web', '--from', 'staging', '--to', 'prod', '--image', 'broken']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /release 2 of 'web' in staging never passed its health gate there \(it failed/);
    assert.equal((await of('web@prod')).live!.version, 1);

    // Staging's live release is too fresh for prod's minSoak: refused, unless forced with a reason.
    const fresh = await run(['promote', 'web', '--from', 'staging', '--to', 'prod']);
    assert.notEqual(fresh.code, 0);
    assert.match(fresh.stderr, /release 1 of 'web' in staging was live there for \d+s, and the target asks for 1h00m \(minSoak\).*--force --reason/);
    const noReason = await run(['promote', 'web', '--from', 'staging', '--to', 'prod', '--force']);
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--force needs --reason/);
    assert.equal((await of('web@prod')).live!.version, 1);
    assert.match((await ok(['promote', 'web', '--from', 'staging', '--to', 'prod', '--force', '--reason', 'hotfix for issue 12'])).stdout, /^web@prod: release 2 live from web@staging release 1/);
    const promoted = await of('web@prod');
    assert.equal(promoted.live!.digest, dev.live!.digest, 'the digest dev ran is the one prod runs');
    assert.equal(await answer(promoted.url), 'prod', "prod's own config");
    const prodHistory = await history('prod');
    assert.deepEqual(prodHistory.map((r) => [r.version, r.status, r.promotedFrom?.service ?? null]), [[2, 'live', 'web@staging'], [1, 'superseded', null]]);
    const ledger = JSON.parse((await ok(['ledger', '--service', 'web@prod', '--json'])).stdout) as Array<{ kind: string; data: Record<string, unknown> }>;
    const event = ledger.find((e) => e.kind === 'release.promoted')!;
    assert.equal(event.data.reason, 'hotfix for issue 12');
    assert.match(String((event.data.forced as string[])[0]), /minSoak/);

    // A revoked digest is promoted nowhere, forced or not.
    await ok(['image', 'revoke', dev.live!.digest, '--reason', 'CVE-2026-0001']);
    const revoked = await run(['promote', 'web', '--from', 'dev', '--to', 'staging', '--force', '--reason', 'try']);
    assert.notEqual(revoked.code, 0);
    assert.match(revoked.stderr, /was revoked by .*CVE-2026-0001/);

    // A name the config does not declare is refused before anything is sent.
    const unknown = await run(['deploy', 'web', '--env', 'qa']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown environment "qa": expected one of dev, staging, prod/);
  });
});
