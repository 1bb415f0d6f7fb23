import assert from 'node:assert/strict';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveInRoot } from '../../src/oci/safe-path.js';
import { tempDir } from '../support/temp.js';

describe('resolveInRoot', () => {
  it('makes the missing folders of a path once when many ask at once (two instances starting together)', async () => {
    const root = await tempDir('imago-safe-path-');
    const paths = await Promise.all(Array.from({ length: 20 }, () => resolveInRoot(root, 'var/lib/notes/data', true)));
    assert.deepEqual(new Set(paths), new Set([join(root, 'var', 'lib', 'notes', 'data')]));
    assert.ok((await lstat(join(root, 'var', 'lib', 'notes'))).isDirectory());
  });
});
