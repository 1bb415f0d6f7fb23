import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ImageStore } from '../../src/store/image-store.js';
import { verifyStore } from '../../src/store/verify-store.js';
import { REPO } from '../support/cli.js';
import { tempDir } from '../support/temp.js';

describe('crash safety', () => {
  it('a writer killed mid-blob leaves no blob under a wrong name, and its temp file is cleared', async () => {
    const home = await tempDir();
    const seed = await ImageStore.open(home);
    const kept = await seed.blobs.putBuffer('written before the crash');
    seed.close();

    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test', 'fixtures', 'slow-blob-writer.ts'), home], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exit = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('writing') && resolve());
      child.on('exit', () => reject(new Error('the writer exited before it started writing')));
    });
    child.kill('SIGKILL');
    assert.equal(await exit, 'SIGKILL');

    const tmp = join(home, 'store', 'tmp');
    assert.equal((await readdir(tmp)).length, 1, 'the half-written blob is a temp file');
    const store = await ImageStore.open(home);
    assert.deepEqual(await readdir(tmp), [], 'opening the store clears temp files of dead writers');
    assert.deepEqual(await store.blobs.list(), [kept.digest]);
    const report = await verifyStore(store);
    assert.deepEqual(report.problems, []);
    store.close();
  });

  it('fsck reports a blob whose bytes were changed on disk', async () => {
    const home = await tempDir();
    const store = await ImageStore.open(home);
    const blob = await store.blobs.putBuffer('original');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(store.blobs.path(blob.digest), 'tampered');
    const report = await verifyStore(store);
    assert.equal(report.problems.length, 1);
    assert.equal(report.problems[0]!.kind, 'corrupt-blob');
    assert.equal(report.problems[0]!.subject, blob.digest);
    store.close();
  });
});
