import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { exportImage } from '../../src/image/export.js';
import { importImage } from '../../src/image/import.js';
import { makeImage } from '../fixtures/make-image.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

// The real tools, for real: skopeo, umoci and a running dockerd are required (CI installs and
// starts them). None of these tests skips: a missing tool or daemon is a failure.

const run = promisify(execFile);
const FILES = { 'app/hello.txt': 'hello from imago\n', 'usr/bin/app': '#!/bin/sh\necho app\n' };

test('skopeo inspects an oci-dir export by its tag', async (t) => {
  const store = await tempStore(t);
  const image = await makeImage(store, { name: 'web', tag: '1', files: FILES });
  const out = join(await tempDir(t), 'layout');
  await exportImage(store, 'web:1', out, { format: 'oci-dir' });

  const { stdout } = await run('skopeo', ['inspect', `oci:${out}:web:1`]);
  const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Os: string };
  assert.equal(info.Digest, image.digest);
  assert.deepEqual(info.Layers, image.layers.map((l) => l.digest));
  assert.equal(info.Os, 'linux');
});

test('umoci unpacks an oci-dir export into a bundle with our files', async (t) => {
  const store = await tempStore(t);
  await makeImage(store, { name: 'web', tag: '1', files: FILES, symlinks: { 'app/link': 'hello.txt' } });
  const dir = await tempDir(t);
  await exportImage(store, 'web:1', join(dir, 'layout'), { format: 'oci-dir' });

  const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
  await run('umoci', ['unpack', ...rootless, '--image', `${join(dir, 'layout')}:web:1`, join(dir, 'bundle')]);
  assert.equal(await readFile(join(dir, 'bundle/rootfs/app/hello.txt'), 'utf8'), FILES['app/hello.txt']);
  assert.equal(await readFile(join(dir, 'bundle/rootfs/app/link'), 'utf8'), FILES['app/hello.txt']);
  assert.ok(JSON.parse(await readFile(join(dir, 'bundle/config.json'), 'utf8')).process, 'umoci wrote a runtime config');
});

test('docker load reads a docker export; docker save comes back as the same image', async (t) => {
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const ref = `imago-test/web:${tag}`;
  const store = await tempStore(t);
  const image = await makeImage(store, { name: 'imago-test/web', tag, files: FILES });
  const dir = await tempDir(t);
  await exportImage(store, ref, join(dir, 'web.tar'), { format: 'docker' });

  t.after(() => run('docker', ['rmi', '--force', ref]).catch(() => undefined));
  const loaded = await run('docker', ['load', '-i', join(dir, 'web.tar')]);
  assert.match(loaded.stdout, new RegExp(`Loaded image: ${ref}`));
  const { stdout } = await run('docker', ['image', 'inspect', ref, '--format', '{{json .}}']);
  const info = JSON.parse(stdout) as { Id: string; RepoTags: string[]; RootFS: { Layers: string[] } };
  assert.deepEqual(info.RepoTags, [ref]);
  assert.equal(info.Id, image.configDigest, 'docker names an image by its config digest');
  assert.deepEqual(info.RootFS.Layers, image.layers.map((l) => l.diffId));

  // docker 20.10 saves in the legacy format (manifest.json only): the conversion gives our manifest back.
  await run('docker', ['save', '-o', join(dir, 'saved.tar'), ref]);
  const fresh = await tempStore(t);
  const imported = await importImage(fresh, join(dir, 'saved.tar'));
  assert.deepEqual(imported.tags, [ref]);
  assert.equal(imported.digest, image.digest);

  await run('docker', ['rmi', ref]);
  await assert.rejects(run('docker', ['image', 'inspect', ref]), 'the loaded image is removed');
});
