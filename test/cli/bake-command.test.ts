import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { imago } from '../support/cli.js';
import { tempDir } from '../support/temp.js';

/** A project with `base` and `web` (built on base) images. */
async function project(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'app'));
  await writeFile(join(dir, 'app', 'a.txt'), 'a');
  await writeFile(
    join(dir, 'imago.yaml'),
    ['images:', '  base:', '    copy: [{ src: app/a.txt, dest: /base.txt }]', '  web:', '    from: base', '    copy: [{ src: app, dest: /app }]', ''].join('\n'),
  );
  return dir;
}

describe('imago bake', () => {
  it('--tag goes to the images asked for, not to bases baked along the way', async () => {
    const dir = await project();
    const home = await tempDir();
    const res = await imago(['bake', 'web', '--tag', '1.6', '--tag', 'web:stable', '--json'], { cwd: dir, home });
    assert.equal(res.code, 0, res.stderr);
    const [base, web] = JSON.parse(res.stdout);
    assert.deepEqual(base.tags.sort(), ['base:1', 'base:latest']);
    assert.deepEqual(web.tags.sort(), ['web:1', 'web:1.6', 'web:latest', 'web:stable']);
  });

  it('a bare --tag applies to every image when none is named; a full name:tag then is refused', async () => {
    const dir = await project();
    const home = await tempDir();
    const all = await imago(['bake', '--tag', '2.0', '--json'], { cwd: dir, home });
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      JSON.parse(all.stdout).map((r: { tags: string[] }) => r.tags.filter((t) => t.endsWith(':2.0'))),
      [['base:2.0'], ['web:2.0']],
    );
    const refused = await imago(['bake', '--tag', 'web:x'], { cwd: dir, home });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--tag: "web:x" names one image, but 2 are being baked/);
    const bad = await imago(['bake', 'web', '--tag', 'no good'], { cwd: dir, home });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--tag: expected a tag like "1.4" or "web:1.4", got "no good"/);
    const unknown = await imago(['bake', 'api'], { cwd: dir, home });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown image "api": expected one of base, web/);
  });

  it('an unusable state folder is a clear error, not a crash', async () => {
    const dir = await project();
    const file = join(dir, 'imago.yaml');
    const res = await imago(['images'], { cwd: dir, home: file });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: failed to open state directory '.*imago\.yaml': .* \(set --home or IMAGO_HOME to a writable folder\)\n$/);
  });
});
