import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import type { Digest } from '../../src/oci/digest.js';
import type { InstanceSpec, OutputStream, Provider } from '../../src/providers/provider.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO } from '../support/cli.js';
import { freePort, getJson, waitFor } from '../support/net.js';
import { copy, imageSpec } from '../support/spec.js';

/** What a provider's test file hands the suite. */
export interface SuiteOptions {
  /** A provider working on `store` (a fresh one each call, as after a restart). */
  newProvider: (store: ImageStore) => Provider | Promise<Provider>;
  /** Runs after the suite's instances are destroyed: removes what outlives them (volumes). */
  cleanUp?: (provider: Provider) => Promise<unknown>;
  /** Tests this provider cannot pass, each with the reason. */
  skip?: Array<{ reason: string; tests: string[] }>;
}

/**
 * The one suite every provider passes: sealing, lifecycle, volumes, adoption. A skipped test
 * must say why.
 */
export function runProviderSuite(name: string, options: SuiteOptions): void {
  const skipped = new Map((options.skip ?? []).flatMap(({ reason, tests }) => tests.map((t) => [t, reason] as const)));
  const test = (title: string, fn: () => Promise<void>) => it(title, { skip: skipped.get(title) ?? false }, fn);

  describe(`provider: ${name}`, () => {
    let store: ImageStore;
    let provider: Provider;
    let digest: Digest;
    const created: string[] = [];
    let counter = 0;

    let home: string;
    const providers: Provider[] = [];
    const newProvider = async () => {
      const made = await options.newProvider(store);
      providers.push(made);
      return made;
    };
    before(async () => {
      // Not tempDir(): its clean-up hook, registered inside a before hook, would run right after it.
      home = await mkdtemp(join(tmpdir(), 'imago-provider-'));
      store = await ImageStore.open(home);
      const context = join(REPO, 'test', 'fixtures');
      const result = await bake({
        store,
        spec: imageSpec({
          name: 'suite-app',
          context,
          from: { kind: 'host', executables: ['node'] },
          steps: [copy('instance-app.mjs', '/app/app.mjs')],
          env: [['GREETING', 'from the image']],
          workdir: '/app',
          entrypoint: ['/usr/bin/node', '/app/app.mjs'],
          user: '1000:1000',
        }),
      });
      digest = result.digest;
      provider = await newProvider();
      await provider.loadImage(digest);
    });

    after(async () => {
      for (const id of created) await provider.destroy(id, { graceMs: 0 }).catch(() => undefined);
      await options.cleanUp?.(provider);
      for (const made of providers) await made.close();
      store.close();
      await rm(home, { recursive: true, force: true });
    });

    const spec = async (over: Partial<InstanceSpec> = {}): Promise<InstanceSpec> => ({
      id: `suite-r1-${process.pid.toString(16)}${(counter++).toString(16).padStart(2, '0')}`,
      digest,
      labels: { 'imago.service': 'suite', 'imago.release': '1', 'imago.digest': digest },
      port: await freePort(),
      env: [],
      volumes: [],
      ...over,
    });
    const start = async (over: Partial<InstanceSpec> = {}) => {
      const s = await spec(over);
      created.push(s.id);
      return provider.create(s);
    };

    test('starts an instance that answers on its port, with the image env, its own env and PORT', async () => {
      const instance = await start({ env: [['EXTRA', '1']] });
      assert.equal(instance.state, 'running');
      const { body } = await getJson<{ env: Record<string, string>; cwd: string }>(`http://127.0.0.1:${instance.address.port}/`);
      assert.deepEqual(body.env, { GREETING: 'from the image', PORT: String(instance.address.port) });
      assert.equal(body.cwd, '/app');
    });

    test('runs as the image user, alone in its pid namespace', async () => {
      const instance = await start();
      const { body } = await getJson<{ uid: number; gid: number; pid: number }>(`http://127.0.0.1:${instance.address.port}/`);
      assert.deepEqual([body.uid, body.gid, body.pid], [1000, 1000, 1]);
    });

    test('cannot write to its root filesystem, can write to a private /tmp', async () => {
      const instance = await start();
      const base = `http://127.0.0.1:${instance.address.port}`;
      const denied = await getJson<{ code: string }>(`${base}/write?path=/app/app.mjs&data=changed`);
      assert.equal(denied.status, 500);
      assert.ok(['EROFS', 'EACCES'].includes(denied.body.code), denied.body.code);
      const etc = await getJson<{ code: string }>(`${base}/write?path=/etc/evil&data=x`);
      assert.ok(['EROFS', 'EACCES', 'ENOENT'].includes(etc.body.code), etc.body.code);
      assert.equal((await getJson(`${base}/write?path=/tmp/scratch&data=ok`)).status, 200);
    });

    test('keeps a volume across instances; the instance is gone after destroy, its log stays', async () => {
      const volumes = [{ name: 'data', path: '/var/lib/app' }];
      const first = await start({ volumes });
      assert.equal((await getJson(`http://127.0.0.1:${first.address.port}/write?path=/var/lib/app/note&data=kept`)).status, 200);
      await provider.destroy(first.id, { graceMs: 5000 });
      assert.equal(await provider.inspect(first.id), undefined);
      assert.match(await printed(provider, first.id, 'stdout'), /SIGTERM: goodbye/);
      const second = await start({ volumes });
      const { body } = await getJson<{ data: string }>(`http://127.0.0.1:${second.address.port}/read?path=/var/lib/app/note`);
      assert.equal(body.data, 'kept');
    });

    test('kills an instance that ignores SIGTERM once the grace period ends', async () => {
      const instance = await start({ env: [['STUBBORN', '1']] });
      await getJson(`http://127.0.0.1:${instance.address.port}/`);
      const started = Date.now();
      await provider.destroy(instance.id, { graceMs: 300 });
      assert.ok(Date.now() - started >= 300, 'waited for the grace period');
      assert.equal(await provider.inspect(instance.id), undefined);
      assert.match(await printed(provider, instance.id, 'stdout'), /ignoring SIGTERM/);
    });

    test('reports an app that exits as exited, with its exit code', async () => {
      const instance = await start({ env: [['CRASH', '3']] });
      await waitFor('the app to exit', async () => (await provider.inspect(instance.id))?.state === 'exited');
      const seen = await provider.inspect(instance.id);
      assert.equal(seen?.exitCode, 3);
      await provider.destroy(instance.id, { graceMs: 1000 }); // its log is complete once destroyed
      assert.match(await printed(provider, instance.id, 'stderr'), /crashing on purpose/);
      assert.doesNotMatch(await printed(provider, instance.id, 'stdout'), /crashing on purpose/, 'stderr is kept apart from stdout');
    });

    test('streams output from any position, and forgets it when told', async () => {
      const instance = await start({});
      await waitFor('the app to say it listens', async () => (await printed(provider, instance.id, 'stdout')).includes('listening on'));
      const whole = Buffer.from(await printed(provider, instance.id, 'stdout'));
      const piece = Buffer.alloc(4);
      const read = await provider.readOutput(instance.id, 'stdout', 2, piece);
      assert.equal(read.size, whole.length);
      assert.equal(piece.subarray(0, read.bytes).toString(), whole.subarray(2, 6).toString());
      assert.deepEqual(await provider.readOutput(instance.id, 'stdout', whole.length + 10, piece), { bytes: 0, size: whole.length }, 'past the end reads nothing');
      assert.deepEqual(await provider.readOutput('no-such-instance', 'stderr', 0, piece), { bytes: 0, size: 0 });
      await provider.destroy(instance.id, { graceMs: 5000 });
      assert.match(await printed(provider, instance.id, 'stdout'), /SIGTERM: goodbye/, 'the output outlives the instance');
      const closed = await newProvider();
      await closed.close();
      assert.match(await printed(closed, instance.id, 'stdout'), /SIGTERM: goodbye/, 'readable through a provider object that was closed');
      await provider.forgetOutput(instance.id);
      assert.equal(await printed(provider, instance.id, 'stdout'), '');
    });

    test('kills an instance at once, as a crash would: it stays listed, exited, until destroyed', async () => {
      const instance = await start();
      await getJson(`http://127.0.0.1:${instance.address.port}/`);
      const events: string[] = [];
      const unwatch = provider.watch?.((event) => event.id === instance.id && events.push(event.kind));
      await provider.kill(instance.id);
      await waitFor('the killed instance to be exited', async () => (await provider.inspect(instance.id))?.state === 'exited');
      assert.deepEqual((await provider.list({ 'imago.service': 'suite' })).filter((i) => i.id === instance.id).map((i) => i.state), ['exited']);
      if (unwatch) {
        await waitFor('a watcher to hear of the exit', () => events.includes('exited'), 5000);
        unwatch();
      }
      await provider.destroy(instance.id, { graceMs: 1000 });
      assert.equal(await provider.inspect(instance.id), undefined);
    });

    test('reads the CPU and memory of a running instance, and none of one that is gone', async () => {
      assert.ok(provider.usage, 'the provider reads usage');
      const instance = await start();
      // Some work for the CPU counter to count.
      for (let i = 0; i < 50; i++) await getJson(`http://127.0.0.1:${instance.address.port}/`);
      const usage = (await provider.usage([instance.id, 'suite-r1-nosuchinstance'])).get(instance.id);
      assert.ok(usage, 'a running instance has a reading');
      assert.ok(usage.memoryBytes > 1_000_000 && usage.memoryBytes < 4_000_000_000, `memory ${usage.memoryBytes}`);
      assert.ok(usage.cpuSeconds > 0 && usage.cpuSeconds < 3600, `cpu ${usage.cpuSeconds}`);
      await provider.destroy(instance.id, { graceMs: 0 });
      assert.equal((await provider.usage([instance.id])).size, 0);
    });

    test('lists by label, and a new provider object (a restart) finds the running instances', async () => {
      const instance = await start({ labels: { 'imago.service': 'suite', 'imago.release': '7', 'imago.digest': digest } });
      const listed = await provider.list({ 'imago.release': '7' });
      assert.deepEqual(listed.map((i) => i.id), [instance.id]);
      const again = await newProvider();
      const found = await again.inspect(instance.id);
      assert.equal(found?.state, 'running');
      assert.deepEqual(found?.labels, instance.labels);
      await getJson(`http://127.0.0.1:${instance.address.port}/`);
    });
  });
}

/** Everything instance `id` printed on `stream` so far, read through the provider. */
async function printed(provider: Provider, id: string, stream: OutputStream): Promise<string> {
  const { size } = await provider.readOutput(id, stream, 0, Buffer.alloc(0));
  const buffer = Buffer.alloc(size);
  const { bytes } = await provider.readOutput(id, stream, 0, buffer);
  return buffer.toString('utf8', 0, bytes);
}
