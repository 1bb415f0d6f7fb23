import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { containerCreateOptions, volumeName } from '../../src/providers/docker/container-config.js';
import { driftOf } from '../../src/providers/docker/drift.js';
import { dockerScope } from '../../src/providers/docker/scope.js';
import { sinceArgument, timestampNanos } from '../../src/providers/docker/log-follower.js';
import type { InstanceSpec } from '../../src/providers/provider.js';
import { VolumeManager } from '../../src/providers/docker/volumes.js';
import { ProviderError } from '../../src/errors.js';

const digest = `sha256:${'ab'.repeat(32)}` as const;
const spec = (over: Partial<InstanceSpec> = {}): InstanceSpec => ({
  id: 'web-r3-a1b2c3',
  digest,
  labels: { 'imago.service': 'web', 'imago.release': '3' },
  port: 41234,
  env: [['MODE', 'prod']],
  volumes: [],
  ...over,
});
const ctx = { image: 'imago.local/sha256:abab', scope: '0123456789ab', network: 'imago', volumeNames: { data: 'imago-0123456789ab-web-data' }, defaultResources: { memory: 1024 ** 3, pids: 1024 } };

describe('docker container config', () => {
  it('seals the container as the CIS Docker Benchmark asks', () => {
    const host = containerCreateOptions(spec({ resources: { memory: 256 * 1024 ** 2, pids: 64 } }), ctx).HostConfig!;
    assert.equal(host.ReadonlyRootfs, true);
    assert.deepEqual(host.CapDrop, ['ALL']);
    assert.equal(host.CapAdd, undefined);
    assert.equal(host.Privileged, false);
    assert.deepEqual(host.SecurityOpt, ['no-new-privileges:true']);
    assert.deepEqual(Object.keys(host.Tmpfs ?? {}), ['/tmp']);
    assert.equal(host.Memory, 256 * 1024 ** 2);
    assert.equal(host.MemorySwap, 256 * 1024 ** 2, 'no swap beyond the memory limit');
    assert.equal(host.PidsLimit, 64);
    assert.equal(host.IpcMode, 'private');
    assert.deepEqual(containerCreateOptions(spec(), ctx).Healthcheck, { Test: ['NONE'] }, 'no engine health check: it would exec into the container');
    assert.deepEqual(host.RestartPolicy, { Name: 'no' });
    assert.notEqual(host.NetworkMode, 'host');
  });

  it('publishes the instance port on 127.0.0.1 only', () => {
    const options = containerCreateOptions(spec(), ctx);
    assert.deepEqual(options.HostConfig!.PortBindings, { '41234/tcp': [{ HostIp: '127.0.0.1', HostPort: '41234' }] });
    assert.deepEqual(options.ExposedPorts, { '41234/tcp': {} });
  });

  it('passes the instance env, then PORT and HOST, and carries imago\'s labels', () => {
    const options = containerCreateOptions(spec(), ctx);
    assert.deepEqual(options.Env, ['MODE=prod', 'PORT=41234', 'HOST=0.0.0.0']);
    assert.deepEqual(options.Labels, {
      'imago.service': 'web',
      'imago.release': '3',
      'imago.scope': '0123456789ab',
      'imago.instance': 'web-r3-a1b2c3',
      'imago.port': '41234',
      'imago.digest': digest,
    });
    assert.equal(options.name, 'web-r3-a1b2c3');
  });

  it('maps the loopback port to the app\'s own port inside the container, passed as PORT', () => {
    const options = containerCreateOptions(spec({ appPort: 8080 }), ctx);
    assert.deepEqual(options.HostConfig!.PortBindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '41234' }] });
    assert.deepEqual(options.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual(options.Env!.slice(-2), ['PORT=8080', 'HOST=0.0.0.0']);
    assert.equal(options.Labels!['imago.port'], '41234', 'the router and probes use the loopback port');
  });

  it('sets each variable once, PORT and HOST last and winning', () => {
    const options = containerCreateOptions(spec({ env: [['PORT', '1'], ['MODE', 'prod'], ['HOST', '127.0.0.1']] }), ctx);
    assert.deepEqual(options.Env, ['PORT=41234', 'MODE=prod', 'HOST=0.0.0.0']);
  });

  it('takes the default limits when the spec has none', () => {
    const host = containerCreateOptions(spec(), ctx).HostConfig!;
    assert.deepEqual([host.Memory, host.PidsLimit], [1024 ** 3, 1024]);
  });

  it('mounts named volumes without copying image content into them', () => {
    const mounts = containerCreateOptions(spec({ volumes: [{ name: 'data', path: '/var/lib/web' }] }), ctx).HostConfig!.Mounts;
    assert.deepEqual(mounts, [{ Type: 'volume', Source: 'imago-0123456789ab-web-data', Target: '/var/lib/web', ReadOnly: false, VolumeOptions: { NoCopy: true } }]);
    assert.equal(volumeName('0123456789ab', 'my.web', 'data'), 'imago-0123456789ab-my.web-data');
  });
});

describe('docker drift from engine events', () => {
  const event = (Action: string, attributes: Record<string, string> = {}) => ({
    Type: 'container',
    Action,
    Actor: { ID: 'c0ffee', Attributes: { 'imago.instance': 'web-r3-a1b2c3', ...attributes } },
    timeNano: Date.UTC(2026, 10, 25, 14, 0, 0) * 1e6,
  });
  const cases: Array<[string, ReturnType<typeof event>, string | undefined]> = [
    ['an exec', event('exec_start: /bin/sh -c echo hi > /tmp/x'), '2026-11-25T14:00:00.000Z docker exec: /bin/sh -c echo hi > /tmp/x'],
    ['a copy in', event('extract-to-dir'), '2026-11-25T14:00:00.000Z files copied in (docker cp)'],
    ['a stop', event('kill', { signal: '15' }), '2026-11-25T14:00:00.000Z signalled (docker stop/kill): signal 15'],
    ['a kill -9 (a crash: it shows as crashed, not drifted)', event('kill', { signal: '9' }), undefined],
    ['a pause', event('pause'), '2026-11-25T14:00:00.000Z paused (docker pause)'],
    ['an update', event('update'), '2026-11-25T14:00:00.000Z limits changed (docker update)'],
    ['a start', event('start'), undefined],
    ['an exec ending', event('exec_die'), undefined],
    ['a copy out (a read)', event('archive-path'), undefined],
    ['an exec of another tool\'s container', { ...event('exec_start: sh'), Actor: { ID: 'x', Attributes: {} as { 'imago.instance': string } } }, undefined],
    ['an image event', { ...event('exec_start: sh'), Type: 'image' }, undefined],
  ];
  for (const [name, input, expected] of cases) {
    it(`reads ${name}`, () => assert.equal(driftOf(input)?.line, expected));
  }
});

describe('docker log timestamps', () => {
  it('reads the engine\'s RFC 3339 nanoseconds, and writes them back as a since argument', () => {
    const at = timestampNanos('2026-11-25T14:53:27.282123456Z')!;
    assert.equal(at, BigInt(Date.UTC(2026, 10, 25, 14, 53, 27)) * 1_000_000n + 282_123_456n);
    assert.equal(sinceArgument(at), `${Date.UTC(2026, 10, 25, 14, 53, 27) / 1000}.282123456`);
    assert.equal(timestampNanos('2026-11-25T14:53:27Z'), BigInt(Date.UTC(2026, 10, 25, 14, 53, 27)) * 1_000_000n);
    assert.equal(timestampNanos('2026-11-25T14:53:27.5+01:00'), BigInt(Date.UTC(2026, 10, 25, 13, 53, 27)) * 1_000_000n + 500_000_000n);
    assert.equal(timestampNanos('yesterday'), undefined);
  });
});

describe('docker scope', () => {
  it('is one id for a home even when many provider objects ask at once, and never read half made', async () => {
    // Many fresh homes, many callers each: one id, whoever made it, and nothing else left behind.
    for (let round = 0; round < 10; round++) {
      const home = await mkdtemp(join(tmpdir(), 'imago-docker-scope-'));
      try {
        const scopes = await Promise.all(Array.from({ length: 16 }, () => dockerScope(home)));
        assert.equal(new Set(scopes).size, 1, scopes.join(' '));
        assert.match(scopes[0]!, /^[0-9a-f]{12}$/);
        assert.equal(await dockerScope(home), scopes[0], 'kept');
        assert.deepEqual(await readdir(join(home, 'docker')), ['scope'], 'no temporary file left');
      } finally {
        await rm(home, { recursive: true, force: true });
      }
    }
  });
});

describe('docker volumes', () => {
  /** The two engine calls VolumeManager makes for a root-owned volume, over a map of name → labels. */
  function fakeEngine(volumes: Map<string, Record<string, string>>) {
    const notFound = () => Object.assign(new Error('no such volume'), { statusCode: 404 });
    return {
      getVolume: (name: string) => ({
        inspect: async () => {
          const labels = volumes.get(name);
          if (!labels) throw notFound();
          return { Name: name, Labels: labels };
        },
        remove: async () => void volumes.delete(name),
      }),
      createVolume: async ({ Name, Labels }: { Name: string; Labels: Record<string, string> }) => void volumes.set(Name, Labels),
    };
  }
  const root = { uid: 0, gid: 0 };
  const scope = '0123456789ab';

  it('refuses a volume whose name another service already holds, and leaves that one as it was', async () => {
    const volumes = new Map<string, Record<string, string>>();
    const manager = new VolumeManager(fakeEngine(volumes) as never, scope);
    const name = volumeName(scope, 'web', 'data-x');
    assert.equal(volumeName(scope, 'web-data', 'x'), name, 'the two pairs make one name');
    await manager.ensure(name, 'web', root);
    await manager.ensure(name, 'web', root); // its own service again: the same volume
    await assert.rejects(manager.ensure(volumeName(scope, 'web-data', 'x'), 'web-data', root, 'x'), (error: Error) => {
      assert.ok(error instanceof ProviderError);
      assert.ok(error.message.startsWith(`volume 'x' of service 'web-data' would be Docker volume '${name}', which holds the data of service 'web'`), error.message);
      return true;
    });
    assert.deepEqual([...volumes], [[name, { 'imago.scope': scope, 'imago.service': 'web' }]]);
  });

  it('refuses the second of two services that ask for the same name at once', async () => {
    const manager = new VolumeManager(fakeEngine(new Map()) as never, scope);
    const name = volumeName(scope, 'web', 'data-x');
    const [first, second] = await Promise.allSettled([manager.ensure(name, 'web', root), manager.ensure(name, 'web-data', root)]);
    assert.equal(first.status, 'fulfilled');
    assert.equal(second.status, 'rejected');
  });

  it('refuses a volume another process made for another service between its look and its create', async () => {
    const volumes = new Map<string, Record<string, string>>();
    const engine = fakeEngine(volumes);
    const name = volumeName(scope, 'web', 'data-x');
    // The engine answers a create of an existing name with that volume, its labels unchanged.
    const racing = {
      ...engine,
      createVolume: async () => void volumes.set(name, volumes.get(name) ?? { 'imago.scope': scope, 'imago.service': 'web' }),
    };
    const manager = new VolumeManager(racing as never, scope);
    await assert.rejects(manager.ensure(name, 'web-data', root, 'x'), /holds the data of service 'web'/);
    assert.equal(volumes.get(name)?.['imago.service'], 'web');
  });

  it("refuses another home's volume of the same name", async () => {
    const volumes = new Map([[volumeName(scope, 'web', 'data'), { 'imago.scope': 'ffffffffffff', 'imago.service': 'web' }]]);
    const manager = new VolumeManager(fakeEngine(volumes) as never, scope);
    await assert.rejects(manager.ensure(volumeName(scope, 'web', 'data'), 'web', root), /does not belong to this imago home/);
  });
});
