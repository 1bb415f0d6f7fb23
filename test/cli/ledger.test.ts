import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { cleanUpHome, imago, REPO, startServer, stopServer } from '../support/cli.js';
import { freePort, waitFor } from '../support/net.js';
import { writeHelloProject } from '../support/project.js';

interface AtAnswer {
  at: string;
  services: Array<{ service: string; live: { version: number; digest: string } | null; instances: Array<{ id: string; release: number | null }>; logs: string }>;
}

describe('imago ledger, ledger verify and at', () => {
  const servers: ChildProcess[] = [];
  let home = '';
  const followers: ChildProcess[] = [];
  after(async () => {
    for (const f of followers) if (f.exitCode === null && f.signalCode === null) f.kill('SIGKILL');
    await cleanUpHome(home, servers, ['process']);
  });

  it('names the right release at four moments of three deploys and a rollback, lists who did what, and catches an edited and a deleted event', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-ledger-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-ledger-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    const service = ['    replicas: 2', '    provider: process', `    listen: 127.0.0.1:${await freePort()}`, '    health: { http: /healthz, interval: 100ms, startPeriod: 20s }', '    stopGrace: 2s'];
    const image = (version: string) => ({ host: ['node', 'busybox'], extra: [`    env: { APP_VERSION: "${version}" }`] });
    await writeHelloProject(project, service, { hello: image('1'), hello2: image('2'), hello3: image('3') });
    const run = (args: string[]) => imago(args, { cwd: project, home });
    assert.equal((await run(['bake'])).code, 0);
    const server = await startServer(home, await freePort());
    servers.push(server);

    const moments: number[] = [];
    let follower: ChildProcess | undefined;
    let followed = '';
    for (const args of [['deploy', 'web'], ['deploy', 'web', '--image', 'hello2'], ['deploy', 'web', '--image', 'hello3'], ['rollback', 'web']]) {
      const r = await run(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      moments.push(Date.now());
      if (!follower) {
        // From the first deploy on: imago events -f sees the rest as it happens.
        follower = spawn(process.execPath, [join(REPO, 'bin', 'imago.js'), '--home', home, 'events', '-f', '--json', '--service', 'web'], { stdio: ['ignore', 'pipe', 'inherit'] });
        followers.push(follower);
        follower.stdout!.on('data', (d: Buffer) => (followed += d.toString()));
        await waitFor('imago events -f started', () => follower!.pid !== undefined, 5_000);
      }
    }
    type Ev = { seq: number; kind: string; releaseId: number; data: Record<string, unknown> };
    const seen = () => followed.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev);
    await waitFor('imago events -f saw the rollback go live', () => seen().filter((e) => e.kind === 'release.live').length >= 3, 10_000);
    follower!.kill('SIGTERM');
    const kinds = new Set(seen().map((e) => e.kind));
    for (const kind of ['release.created', 'deploy.started', 'instance.created', 'instance.serving', 'instance.stopped', 'release.live', 'deploy.succeeded']) assert.ok(kinds.has(kind), `imago events -f printed ${kind}: ${[...kinds].join(', ')}`);
    const seqs = seen().map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in order');
    assert.equal(new Set(seqs).size, seqs.length, 'each once');
    const digests: string[] = [];
    for (const [i, moment] of moments.entries()) {
      const r = await run(['at', new Date(moment).toISOString(), 'web', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const [web] = (JSON.parse(r.stdout) as AtAnswer).services;
      assert.equal(web!.live?.version, i + 1, `moment ${i + 1}: ${r.stdout}`);
      assert.deepEqual(web!.instances.map((x) => x.release), [i + 1, i + 1], `moment ${i + 1}: both instances of the live release`);
      assert.match(web!.logs, /^imago logs web --since \S+ --until \S+$/);
      digests.push(web!.live!.digest);
    }
    // The rollback brought back release 2's image.
    assert.equal(digests[3], digests[1]);
    assert.notEqual(digests[2], digests[1]);
    const plain = await run(['at', new Date(moments[1]!).toISOString(), 'web']);
    assert.match(plain.stdout, /web {2}live: release 2 [0-9a-f]{12}/);

    const listed = await run(['ledger', '--service', 'web', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const events = JSON.parse(listed.stdout) as Array<{ seq: number; kind: string; actor: string }>;
    const deploys = events.filter((e) => e.kind === 'deploy.started');
    assert.equal(deploys.length, 4);
    // Who asked: the OS user and host of the CLI.
    for (const d of deploys) assert.match(d.actor, /^[\w.-]+@[\w.-]+$/);
    for (const kind of ['release.created', 'release.live', 'instance.created', 'instance.stopped', 'deploy.succeeded']) assert.ok(events.some((e) => e.kind === kind), `the ledger has ${kind}`);
    const table = await run(['ledger', '--since', '1h']);
    assert.match(table.stdout, /^SEQ +AT +ACTOR +KIND/);
    assert.equal((await run(['ledger', '--since', 'soon'])).code, 2);

    // The live image (the rollback's: hello2) revoked: in the ledger, refused by a deploy, flagged by status.
    const revoked = await run(['image', 'revoke', 'hello2', '--reason', 'built from a bad base']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /^revoked sha256:[0-9a-f]{64}: built from a bad base$/m);
    const again = await run(['image', 'revoke', 'hello2', '--reason', 'another', '--json']);
    assert.equal((JSON.parse(again.stdout) as { created: boolean; reason: string }).created, false);
    assert.equal((await run(['image', 'revoke', 'hello3', '--reason', ' '])).code, 2, 'a reason is required');
    const refused = await run(['deploy', 'web', '--image', 'hello2']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cannot deploy web: image sha256:[0-9a-f]{64} was revoked by [\w.-]+@[\w.-]+ at \S+: built from a bad base/);
    assert.match((await run(['status'])).stdout, /REVOKED: the live image sha256:[0-9a-f]{64} was revoked: built from a bad base/);
    assert.equal((JSON.parse((await run(['image', 'revoked', '--json'])).stdout) as unknown[]).length, 1);
    const revocations = (JSON.parse((await run(['ledger', '--json'])).stdout) as Array<{ kind: string; data: { reason?: string } }>).filter((e) => e.kind === 'image.revoked');
    assert.deepEqual(revocations.map((e) => e.data.reason), ['built from a bad base']);

    const intact = await run(['ledger', 'verify']);
    assert.equal(intact.code, 0, intact.stderr);
    assert.match(intact.stdout, /^ledger intact: \d+ events, head [0-9a-f]{12}$/m);

    // Someone with the database file: the append-only triggers dropped, one event edited, then one deleted.
    await stopServer(server);
    const db = new Database(join(home, 'imago.db'));
    try {
      db.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;');
      const original = (db.prepare('SELECT actor FROM events WHERE seq = 5').get() as { actor: string }).actor;
      db.prepare("UPDATE events SET actor = 'mallory' WHERE seq = 5").run();
      const edited = await run(['ledger', 'verify']);
      assert.equal(edited.code, 1);
      assert.match(edited.stderr, /ledger broken at event 5: its content does not match its hash .*the event was changed/);
      db.prepare('UPDATE events SET actor = ? WHERE seq = 5').run(original);
      assert.equal((await run(['ledger', 'verify'])).code, 0, 'put back as it was, the chain holds again');
      db.prepare('DELETE FROM events WHERE seq = 7').run();
      const deleted = await run(['ledger', 'verify', '--json']);
      assert.equal(deleted.code, 1);
      assert.deepEqual(JSON.parse(deleted.stdout), { ok: false, seq: 8, reason: 'events 7–7 before it are missing' });
    } finally {
      db.close();
    }
  });
});
