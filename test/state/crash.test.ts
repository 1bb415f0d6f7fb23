import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sha256 } from '../../src/oci/digest.js';
import { listEvents, verifyLedger } from '../../src/state/ledger.js';
import { createRelease, listReleases } from '../../src/state/releases.js';
import { openDb } from '../../src/store/db.js';

const dir = await mkdtemp(join(tmpdir(), 'imago-state-crash-'));
after(() => rm(dir, { recursive: true, force: true }));
const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

describe('crash safety', () => {
  it('a process killed mid-transaction leaves none of its rows, and the database opens and chains on', async () => {
    const file = join(dir, 'imago.db');
    const db = openDb(file);
    const kept = createRelease(db, { service: 'web', digest: sha256('kept'), config: {}, createdBy: 'alice' });
    const walBefore = (await stat(`${file}-wal`)).size;

    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exit = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', () => reject(new Error('the writer exited before it was ready')));
    });
    assert.ok((await stat(`${file}-wal`)).size > walBefore + 1_000_000, 'the uncommitted transaction reached the WAL file');
    assert.deepEqual(listReleases(db, 'web').map((r) => r.id), [kept.id], 'readers never see uncommitted rows');
    child.kill('SIGKILL');
    assert.equal(await exit, 'SIGKILL');
    db.close();

    const reopened = openDb(file);
    try {
      assert.deepEqual(listReleases(reopened, 'web').map((r) => r.version), [1]);
      assert.deepEqual(listEvents(reopened).map((e) => e.kind), ['release.created']);
      assert.equal(reopened.pragma('integrity_check', { simple: true }), 'ok');
      const next = createRelease(reopened, { service: 'web', digest: sha256('next'), config: {}, createdBy: 'alice' });
      assert.equal(next.version, 2);
      assert.deepEqual(verifyLedger(reopened), { ok: true, count: 2, head: listEvents(reopened).at(-1)!.hash });
    } finally {
      reopened.close();
    }
  });
});
