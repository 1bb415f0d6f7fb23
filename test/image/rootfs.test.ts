import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportImage, type ExportFormat } from '../../src/image/export.js';
import { importImage } from '../../src/image/import.js';
import { unpackImage } from '../../src/image/unpack-image.js';
import { sha256File } from '../../src/oci/digest.js';
import { makeImage } from '../fixtures/make-image.js';
import { readTar, writeTar, type TarEntry } from '../fixtures/tar.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

// A Debian-style root filesystem (merged /usr, absolute and relative symlinks) survives
// export, import and unpack: every link is kept as written, and none is followed out of the root.

const SYMLINKS = {
  bin: 'usr/bin',
  lib: 'usr/lib',
  sbin: 'usr/sbin',
  'etc/alternatives/x': '/usr/bin/sh',
  'etc/localtime': '/usr/share/zoneinfo/UTC',
  'usr/lib/foo': '../share/foo',
};

const VARIANTS: Array<{ format: ExportFormat; legacyOnly?: boolean }> = [{ format: 'docker' }, { format: 'docker', legacyOnly: true }, { format: 'oci' }];

for (const { format, legacyOnly } of VARIANTS) {
  const via = legacyOnly ? 'docker archive read through manifest.json only' : format === 'oci' ? 'OCI layout tar' : 'docker archive';
  test(`a Debian-style rootfs keeps its symlinks through a ${via}`, async (t) => {
    // An absolute link to a folder that does not exist on the host, written through by a later layer.
    const hostProbe = `/tmp/imago-host-probe-${randomBytes(6).toString('hex')}`;
    const source = await tempStore(t);
    const image = await makeImage(source, {
      name: 'debian',
      tag: '12',
      files: {
        'usr/bin/sh': '#!imago test shell\n',
        'usr/sbin/init': 'init\n',
        'usr/share/zoneinfo/UTC': 'TZif2 test\n',
        'usr/share/foo/README': 'foo\n',
        'etc/hostname': 'debian\n',
      },
      symlinks: { ...SYMLINKS, 'etc/conf': hostProbe },
      layers: [
        {
          parents: false,
          files: {
            'bin/tool': 'through bin -> usr/bin\n',
            'usr/lib/foo/extra': 'through ../share/foo\n',
            'etc/conf/app.conf': 'through an absolute link\n',
          },
        },
      ],
    });
    const hostShell = await sha256File('/usr/bin/sh').catch(() => undefined);

    const out = join(await tempDir(t), 'debian.tar');
    await exportImage(source, 'debian:12', out, { format });
    if (legacyOnly) {
      // What docker 20.10 itself writes: no OCI index, so the import converts docker's manifest.
      const entries = (await readTar(out)).filter((e) => e.name !== 'index.json' && e.name !== 'oci-layout');
      await writeTar(out, entries.map((e) => ({ name: e.name, type: e.type as TarEntry['type'], data: e.data })));
    }
    const target = await tempStore(t);
    const imported = await importImage(target, out);
    assert.equal(imported.digest, image.digest);

    const root = join(await tempDir(t), 'rootfs');
    await unpackImage(target, imported.digest, root);

    for (const [path, link] of Object.entries(SYMLINKS)) {
      assert.ok((await lstat(join(root, path))).isSymbolicLink(), `${path} is a symlink`);
      assert.equal(await readlink(join(root, path)), link, `${path} -> ${link}`);
    }
    assert.equal(await readlink(join(root, 'etc/conf')), hostProbe);
    // Relative links resolve inside the root.
    assert.equal(await readFile(join(root, 'bin/sh'), 'utf8'), '#!imago test shell\n');
    assert.equal(await readFile(join(root, 'usr/bin/tool'), 'utf8'), 'through bin -> usr/bin\n');
    assert.equal(await readFile(join(root, 'usr/share/foo/extra'), 'utf8'), 'through ../share/foo\n');
    // Absolute links were resolved inside the root, never on the host.
    assert.equal(await readFile(join(root, hostProbe, 'app.conf'), 'utf8'), 'through an absolute link\n');
    await assert.rejects(lstat(hostProbe), { code: 'ENOENT' }, 'nothing was created on the host');
    assert.equal(await sha256File('/usr/bin/sh').catch(() => undefined), hostShell, "the host's /usr/bin/sh is untouched");
    assert.ok((await lstat(join(root, 'usr/bin/sh'))).isFile());
  });
}
