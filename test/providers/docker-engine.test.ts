import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outputTail } from '../../src/providers/output-files.js';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { bake } from '../../src/bake/baker.js';
import { ProviderError } from '../../src/errors.js';
import type { Digest } from '../../src/oci/digest.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { imageRef } from '../../src/providers/docker/image-loader.js';
import type { InstanceSpec } from '../../src/providers/provider.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO, sh } from '../support/cli.js';
import { freePort, getJson } from '../support/net.js';
import { copy, imageSpec } from '../support/spec.js';

/** Runs the docker CLI; resolves with what it printed. */
const docker = (...args: string[]) => sh('docker', args);

/** What only the docker provider does: the engine's view of the seal, image loading, log hand-over, errors. */
describe('docker provider on a real engine', () => {
  let home: string;
  let store: ImageStore;
  let digest: Digest;
  const providers: DockerProvider[] = [];
  const provider = (options: ConstructorParameters<typeof DockerProvider>[1] = {}) => {
    const made = new DockerProvider(store, options);
    providers.push(made);
    return made;
  };
  let counter = 0;
  const spec = async (over: Partial<InstanceSpec> = {}): Promise<InstanceSpec> => ({
    id: `engine-r1-${process.pid.toString(16)}${(counter++).toString(16).padStart(2, '0')}`,
    digest,
    labels: { 'imago.service': 'engine', 'imago.release': '1', 'imago.digest': digest },
    port: await freePort(),
    env: [],
    volumes: [],
    ...over,
  });

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-docker-engine-'));
    store = await ImageStore.open(home);
    // A digest no earlier run loaded: the image carries this run's home in its env.
    const result = await bake({
      store,
      spec: imageSpec({ name: 'engine-app', context: join(REPO, 'test', 'fixtures'), from: { kind: 'host', executables: ['node'] }, steps: [copy('instance-app.mjs', '/app/app.mjs')], env: [['RUN', home]], entrypoint: ['/usr/bin/node', '/app/app.mjs'], user: '1000:1000' }),
    });
    digest = result.digest;
  });

  after(async () => {
    const cleaner = provider();
    for (const instance of await cleaner.list()) await cleaner.destroy(instance.id, { graceMs: 0 });
    for (const made of providers) await made.close();
    await docker('rmi', imageRef(digest)).catch(() => undefined);
    store.close();
    await rm(home, { recursive: true, force: true });
  });

  it('loads an image once, for every provider object, and refuses an engine image that is not the store\'s', async () => {
    const counting = new Docker();
    let loads = 0;
    const load = counting.loadImage.bind(counting);
    counting.loadImage = ((...args: Parameters<Docker['loadImage']>) => {
      loads++;
      return load(...args);
    }) as Docker['loadImage'];
    const first = provider({ docker: counting });
    await Promise.all([first.loadImage(digest), first.loadImage(digest), provider({ docker: counting }).loadImage(digest)]);
    await provider({ docker: counting }).loadImage(digest);
    assert.equal(loads, 1);
    const info = await counting.getImage(imageRef(digest)).inspect();
    const manifest = JSON.parse((await store.blobs.read(digest)).toString()) as { config: { digest: string } };
    assert.ok([manifest.config.digest, digest].includes(info.Id), `the engine's id ${info.Id} is the store's`);

    // Someone points imago's name for another digest at a different image: refused, not used.
    const other = (await bake({ store, spec: imageSpec({ name: 'other', context: join(REPO, 'test', 'fixtures'), from: { kind: 'host', executables: ['node'] }, env: [['RUN', `${home}-other`]], entrypoint: ['/usr/bin/node'] }) })).digest;
    await docker('tag', imageRef(digest), imageRef(other));
    try {
      await assert.rejects(provider().loadImage(other), (error: Error) => error instanceof ProviderError && /is sha256:[0-9a-f]{64}, not imago's/.test(error.message));
    } finally {
      await docker('rmi', imageRef(other));
    }
  });

  it('seals the container: the engine shows the settings, and the app sees no capabilities and no new privileges', async () => {
    const instances = provider();
    const instance = await instances.create(await spec({ resources: { memory: 128 * 1024 ** 2, pids: 64 } }));
    const stdout = await docker('inspect', instance.id);
    const [info] = JSON.parse(stdout) as Array<{ Image: string; Config: { User: string; Image: string }; HostConfig: Record<string, unknown> }>;
    const manifest = JSON.parse((await store.blobs.read(digest)).toString()) as { config: { digest: string } };
    assert.ok([manifest.config.digest, digest].includes(info!.Image), 'made from the store\'s image');
    assert.equal(info!.Config.Image, info!.Image, 'by id, not by a name someone could move');
    const host = info!.HostConfig;
    assert.equal(host.ReadonlyRootfs, true);
    assert.equal(host.Privileged, false);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges:true']);
    assert.equal(host.Memory, 128 * 1024 ** 2);
    assert.equal(host.PidsLimit, 64);
    assert.deepEqual(host.PortBindings, { [`${instance.address.port}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(instance.address.port) }] });
    assert.equal(info!.Config.User, '1000:1000');
    const { body } = await getJson<{ data: string }>(`http://127.0.0.1:${instance.address.port}/read?path=/proc/self/status`);
    assert.match(body.data, /^CapEff:\s+0000000000000000$/m);
    assert.match(body.data, /^CapBnd:\s+0000000000000000$/m);
    assert.match(body.data, /^NoNewPrivs:\s+1$/m);
  });

  it('hands the log over to a new provider object without losing or repeating a line', async () => {
    const before = provider();
    const instance = await before.create(await spec());
    await getJson(`http://127.0.0.1:${instance.address.port}/`);
    await before.close(); // the control plane stops; the container keeps running
    const afterRestart = provider();
    await afterRestart.list({ 'imago.service': 'engine' }); // adopts it, and follows its log from where the last one stopped
    await afterRestart.destroy(instance.id, { graceMs: 5000 });
    const log = (await outputTail(afterRestart, instance.id, 100)).join('\n');
    assert.equal(log.match(/listening on/g)?.length, 1, log);
    assert.equal(log.match(/SIGTERM: goodbye/g)?.length, 1, log);
  });

  it('refuses a network of its name that imago did not make (one that lets containers talk to each other)', async () => {
    const name = `imago-test-${process.pid}`;
    await docker('network', 'create', name);
    try {
      await assert.rejects(provider({ network: name }).list(), (error: Error) => error instanceof ProviderError && new RegExp(`network '${name}' was not made by imago`).test(error.message));
    } finally {
      await docker('network', 'rm', name);
    }
  });

  it('says where it looked when the engine cannot be reached', async () => {
    const unreachable = provider({ docker: new Docker({ socketPath: join(home, 'no-docker.sock') }) });
    await assert.rejects(unreachable.list(), (error: Error) => error instanceof ProviderError && /cannot reach the Docker Engine at .*; start dockerd, or set DOCKER_HOST/.test(error.message));
  });
});
