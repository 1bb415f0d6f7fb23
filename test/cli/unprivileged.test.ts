import assert from 'node:assert/strict';
import { chown, cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { imago, imagoVia, REPO, type CliResult } from '../support/cli.js';
import { tempDir } from '../support/temp.js';

const NOBODY = 65534;

/** Runs the built CLI as an unprivileged user (setpriv from util-linux). */
function imagoAsNobody(args: string[], cwd: string, home: string): Promise<CliResult> {
  const setpriv = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
  return imagoVia(setpriv, args, { cwd, home, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home } });
}

describe('baking without root', () => {
  it('bakes examples/hello (run step included) to the same digest as root does', { skip: process.getuid?.() !== 0 ? 'needs root to switch to an unprivileged user' : false }, async () => {
    const dir = await tempDir();
    const ctx = join(dir, 'hello');
    const home = join(dir, 'home');
    await cp(join(REPO, 'examples', 'hello'), ctx, { recursive: true });
    await mkdir(home);
    for (const path of [dir, ctx, home, join(ctx, 'app'), join(ctx, 'app', 'server.js'), join(ctx, 'app', 'package.json'), join(ctx, 'imago.yaml')]) {
      await chown(path, NOBODY, NOBODY);
    }
    const asNobody = await imagoAsNobody(['bake', '--json'], ctx, home);
    assert.equal(asNobody.code, 0, asNobody.stderr);
    const asRoot = await imago(['bake', '--json'], { cwd: join(REPO, 'examples', 'hello'), home: await tempDir() });
    assert.equal(asRoot.code, 0, asRoot.stderr);
    assert.equal(JSON.parse(asNobody.stdout)[0].digest, JSON.parse(asRoot.stdout)[0].digest);
  });

  it('cleans up a sandbox a step made read-only, and names an unreadable context file', { skip: process.getuid?.() !== 0 ? 'needs root to switch to an unprivileged user' : false }, async () => {
    const dir = await tempDir();
    const home = join(dir, 'home');
    await mkdir(home);
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'ok.js'), 'ok');
    await writeFile(
      join(dir, 'imago.yaml'),
      'images:\n  ro:\n    from: { host: busybox }\n    run: ["mkdir -p /ro/sub && touch /ro/sub/f && chmod 555 /ro/sub /ro"]\n  secret:\n    copy: [{ src: app, dest: /app }]\n',
    );
    for (const path of [dir, home, join(dir, 'app'), join(dir, 'app', 'ok.js'), join(dir, 'imago.yaml')]) await chown(path, NOBODY, NOBODY);
    const baked = await imagoAsNobody(['bake', 'ro'], dir, home);
    assert.equal(baked.code, 0, baked.stderr);
    assert.deepEqual(await readdir(join(home, 'store', 'tmp')), [], 'the read-only sandbox root is gone');
    const listed = await imagoAsNobody(['images', '--json'], dir, home);
    assert.equal(listed.code, 0, listed.stderr);

    await writeFile(join(dir, 'app', 'root-only.js'), 'x', { mode: 0o600 });
    const refused = await imagoAsNobody(['bake', 'secret'], dir, home);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: images\.secret\.copy\[0\]: failed to read 'app\/root-only\.js' in the build context: EACCES/m);
    assert.doesNotMatch(refused.stderr, /unexpected/);
  });
});
