import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { ImageError } from '../../src/errors.js';
import { exportImage, type ExportFormat } from '../../src/image/export.js';
import type { Digest } from '../../src/oci/digest.js';
import { makeImage } from '../fixtures/make-image.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

// An export cancelled by its signal (the CLI aborts it on SIGINT), or failing half way, leaves
// nothing beside its output: no half archive, no hidden temp file.

const FORMATS: ExportFormat[] = ['oci', 'oci-dir', 'docker'];

function cancelled(error: unknown): boolean {
  assert.ok(error instanceof ImageError, String(error));
  assert.match(error.message, /^failed to export image 'web:1' to '.*': the export was cancelled$/);
  return true;
}

test('an export whose signal is already aborted writes nothing', async (t) => {
  const store = await tempStore(t);
  await makeImage(store, { name: 'web', tag: '1', files: { 'a.txt': 'a' } });
  const dir = await tempDir(t);
  for (const format of FORMATS) {
    await assert.rejects(exportImage(store, 'web:1', join(dir, `out-${format}`), { format, signal: AbortSignal.abort() }), cancelled);
  }
  assert.deepEqual(await readdir(dir), []);
});

test('an export aborted while it copies a blob stops, and removes its temp file or folder', async (t) => {
  const store = await tempStore(t);
  await makeImage(store, { name: 'web', tag: '1', files: { 'big.bin': randomBytes(2 * 1024 * 1024) } });
  const dir = await tempDir(t);
  for (const format of FORMATS) {
    const controller = new AbortController();
    const stream = store.blobs.stream.bind(store.blobs);
    // The first chunk of a blob read aborts the export: deterministic, mid-write.
    store.blobs.stream = (digest: Digest) =>
      Readable.from(
        (async function* () {
          for await (const chunk of stream(digest)) {
            yield chunk as Buffer;
            controller.abort();
          }
        })(),
      );
    await assert.rejects(exportImage(store, 'web:1', join(dir, `out-${format}`), { format, signal: controller.signal }), cancelled);
    store.blobs.stream = stream;
    assert.deepEqual(await readdir(dir), [], `${format}: nothing left`);
  }
});

test('an export failing while it copies a blob removes its temp file or folder', async (t) => {
  const store = await tempStore(t);
  const image = await makeImage(store, { name: 'web', tag: '1', files: { 'big.bin': randomBytes(1024 * 1024) } });
  const dir = await tempDir(t);
  const stream = store.blobs.stream.bind(store.blobs);
  store.blobs.stream = (digest: Digest) =>
    digest !== image.layers[0]!.digest
      ? stream(digest)
      : Readable.from(
          (async function* () {
            yield Buffer.alloc(1024);
            throw new Error('disk went away');
          })(),
        );
  for (const format of FORMATS) {
    await assert.rejects(exportImage(store, 'web:1', join(dir, `out-${format}`), { format }), /failed to export image 'web:1' to '.*': .*disk went away/);
    assert.deepEqual(await readdir(dir), [], `${format}: nothing left`);
  }
});
