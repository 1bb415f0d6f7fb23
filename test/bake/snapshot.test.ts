import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffSnapshots, type NodeInfo, type Snapshot } from '../../src/bake/snapshot.js';

const file = (ino: number, more: Partial<NodeInfo> = {}): NodeInfo => ({
  type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, ino: BigInt(ino), nlink: 1, mtimeNs: 1n, ctimeNs: 1n, ...more,
});
const dir = (more: Partial<NodeInfo> = {}): NodeInfo => ({ ...file(0), type: 'directory', mode: 0o755, size: 4096, ...more });
const snap = (entries: Record<string, NodeInfo>): Snapshot => new Map(Object.entries(entries));

describe('diffSnapshots', () => {
  const cases: Array<{ name: string; before: Snapshot; after: Snapshot; expected: string[] }> = [
    { name: 'nothing changed', before: snap({ a: file(1) }), after: snap({ a: file(1) }), expected: [] },
    { name: 'a new file brings its folder', before: snap({ d: dir() }), after: snap({ d: dir(), 'd/f': file(2) }), expected: ['directory d', 'file d/f'] },
    { name: 'content change shows in ctime', before: snap({ a: file(1) }), after: snap({ a: file(1, { ctimeNs: 2n }) }), expected: ['file a'] },
    { name: 'mode change', before: snap({ a: file(1) }), after: snap({ a: file(1, { mode: 0o755 }) }), expected: ['file a'] },
    { name: 'folder owner change', before: snap({ d: dir() }), after: snap({ d: dir({ uid: 5 }) }), expected: ['directory d'] },
    { name: 'a folder only touched is not a change', before: snap({ d: dir() }), after: snap({ d: dir({ mtimeNs: 9n }) }), expected: [] },
    { name: 'deleted file', before: snap({ d: dir(), 'd/f': file(2) }), after: snap({ d: dir() }), expected: ['whiteout d/f'] },
    {
      name: 'deleted folder: one whiteout for the top',
      before: snap({ d: dir(), 'd/e': dir(), 'd/e/f': file(2) }),
      after: snap({}),
      expected: ['whiteout d'],
    },
    {
      name: 'hard links become link entries',
      before: snap({}),
      after: snap({ a: file(7, { nlink: 2 }), b: file(7, { nlink: 2 }) }),
      expected: ['file a', 'hardlink b'],
    },
    {
      name: 'symlink retarget',
      before: snap({ l: { ...file(3), type: 'symlink', target: 'x' } }),
      after: snap({ l: { ...file(3), type: 'symlink', target: 'y' } }),
      expected: ['symlink l'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const entries = diffSnapshots('/root', c.before, c.after).map((e) => `${e.type} ${e.path}`);
      assert.deepEqual(entries, c.expected);
    });
  }

  it('names files by their path under the root, with their real size and owner', () => {
    const [, entry] = diffSnapshots('/r', snap({}), snap({ d: dir({ mode: 0o700, uid: 9 }), 'd/f': file(1, { size: 42, uid: 3, gid: 4 }) }));
    assert.deepEqual(entry, { type: 'file', path: 'd/f', mode: 0o644, uid: 3, gid: 4, size: 42, source: { file: '/r/d/f' } });
  });

  it('keeps a parent folder\'s real mode rather than a default', () => {
    const [parent] = diffSnapshots('/r', snap({ d: dir({ mode: 0o1777 }) }), snap({ d: dir({ mode: 0o1777 }), 'd/f': file(1) }));
    assert.deepEqual(parent, { type: 'directory', path: 'd', mode: 0o1777, uid: 0, gid: 0 });
  });
});
