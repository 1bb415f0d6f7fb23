import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bakeProgress } from '../../src/cli/bake-progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 80, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream };
}

const digest = `sha256:${'ab'.repeat(32)}` as const;

describe('bake progress', () => {
  it('prints plain lines when not on a terminal', () => {
    const { writes, stream } = fakeStream(false);
    const emit = bakeProgress(stream);
    emit({ type: 'start', image: 'web', total: 2 });
    emit({ type: 'step-start', index: 1, total: 2, label: 'copy app /app' });
    emit({ type: 'files', index: 1, count: 500 });
    emit({ type: 'output', index: 1, line: 'npm notice' });
    emit({ type: 'step-done', index: 1, total: 2, label: 'copy app /app', cached: false, digest, size: 2048, ms: 1500 });
    assert.deepEqual(writes, ['baking web\n', '  hashed 500 files\n', '  | npm notice\n', '[2/2] copy app /app: built abababababab 2.0 kB (1.5s)\n']);
    assert.ok(writes.every((w) => !w.includes('\x1b')), 'no terminal escapes');
  });

  it('keeps a live status line on a terminal, cleared before each printed line', () => {
    const saved = process.env.CI;
    delete process.env.CI;
    try {
      const { writes, stream } = fakeStream(true);
      const emit = bakeProgress(stream);
      emit({ type: 'step-start', index: 0, total: 3, label: 'from host node' });
      assert.match(writes.at(-1)!, /^\r\x1b\[2K\[1\/3\] from host node \(\d+ms\)$/);
      emit({ type: 'step-done', index: 0, total: 3, label: 'from host node', cached: true, digest, size: 10, ms: 3 });
      assert.equal(writes.at(-2), '\r\x1b[2K');
      assert.equal(writes.at(-1), '[1/3] from host node: cached abababababab 10 B (3ms)\n');
    } finally {
      if (saved !== undefined) process.env.CI = saved;
    }
  });

  it('prints only warnings when quiet', () => {
    const { writes, stream } = fakeStream(false);
    const emit = bakeProgress(stream, { quiet: true });
    emit({ type: 'start', image: 'web', total: 1 });
    emit({ type: 'warning', message: 'skipped a device node' });
    assert.deepEqual(writes, ['warning: skipped a device node\n']);
  });
});
