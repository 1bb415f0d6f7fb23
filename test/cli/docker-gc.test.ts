import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import type { Digest } from '../../src/oci/digest.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { imageRef } from '../../src/providers/docker/image-loader.js';
import { ImageStore } from '../../src/store/image-store.js';
import { imago, REPO, sh } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { copy, imageSpec } from '../support/spec.js';

/** Runs the docker CLI; resolves with what it printed. */
const docker = (...args: string[]) => sh('docker', args);
const onEngine = (digest: Digest) => docker('image', 'inspect', imageRef(digest)).then(() => true, () => false);

describe('imago gc and the Docker Engine', () => {
  const homes: string[] = [];
  after(async () => {
    for (const home of homes) await rm(home, { recursive: true, force: true });
  });

  it('removes the engine images this home loaded that nothing refers to, and keeps the rest', async () => {
    const home = await mkdtemp(join(tmpdir(), 'imago-docker-gc-'));
    homes.push(home);
    const store = await ImageStore.open(home);
    const provider = new DockerProvider(store);
    const digests: Record<'tagged' | 'dropped' | 'running', Digest> = {} as never;
    // Clean up even when an assertion fails: the container, and the images this test loaded.
    after(async () => {
      const reopened = await ImageStore.open(home);
      const cleaner = new DockerProvider(reopened);
      for (const instance of await cleaner.list()) await cleaner.destroy(instance.id, { graceMs: 0 });
      await cleaner.close();
      await provider.close();
      reopened.close();
      for (const digest of Object.values(digests)) await docker('rmi', imageRef(digest)).catch(() => undefined);
    });
    try {
      for (const name of ['tagged', 'dropped', 'running'] as const) {
        const spec = imageSpec({ name: `gc-${name}`, context: join(REPO, 'test', 'fixtures'), from: { kind: 'host', executables: ['node'] }, steps: [copy('instance-app.mjs', '/app/app.mjs')], env: [['RUN', `${home}-${name}`]], entrypoint: ['/usr/bin/node', '/app/app.mjs'] });
        digests[name] = (await bake({ store, spec })).digest;
        await provider.loadImage(digests[name]);
      }
      // An image that runs, untagged: the container keeps it on the engine.
      await provider.create({ id: `gc-r1-${process.pid.toString(16)}`, digest: digests.running, labels: { 'imago.service': 'gc' }, port: await freePort(), env: [], volumes: [] });
    } finally {
      store.close();
    }
    const untag = await imago(['image', 'rm', '--force', digests.dropped, digests.running], { home });
    assert.equal(untag.code, 0, untag.stderr);

    const dry = await imago(['gc', '--dry-run', '--json'], { home });
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual((JSON.parse(dry.stdout) as { engineImages: { removed: string[] } }).engineImages.removed.sort(), [digests.dropped, digests.running].sort());
    assert.ok(await onEngine(digests.dropped), 'a dry run removes nothing');

    const real = await imago(['gc'], { home });
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /deleted 1 images from the Docker Engine; kept 2/);
    assert.equal(await onEngine(digests.dropped), false);
    assert.equal(await onEngine(digests.tagged), true);
    assert.equal(await onEngine(digests.running), true);
    const record = await readFile(join(home, 'docker', 'images'), 'utf8');
    assert.deepEqual(record.trim().split('\n').sort(), [digests.tagged, digests.running].sort());
  });

  it('does not talk to Docker for a home that never used it', async () => {
    const home = await mkdtemp(join(tmpdir(), 'imago-nodocker-gc-'));
    homes.push(home);
    const result = await imago(['gc', '--json'], { home, env: { DOCKER_HOST: `unix://${join(home, 'none.sock')}` } });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as Record<string, unknown>).engineImages, undefined);
  });
});
