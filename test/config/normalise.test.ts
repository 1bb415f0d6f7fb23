import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { ImageSpec } from '../../src/config/types.js';

const FILE = '/project/imago.yaml';
const DIGEST = `sha256:${'a'.repeat(64)}`;

/** Normalises a config holding the one image `web`. */
function normaliseWeb(image: Record<string, unknown>): ImageSpec {
  const spec = normaliseConfig({ images: { web: image } }, FILE).images.web;
  assert.ok(spec);
  return spec;
}

test('an empty or absent images section is an empty config', () => {
  for (const raw of [{}, { images: {} }, { images: null }, null, undefined]) {
    assert.deepEqual(normaliseConfig(raw, FILE), { file: FILE, root: '/project', images: {}, services: {}, environments: {}, defaultEnvironment: undefined });
  }
});

test('a minimal image gets every default', () => {
  assert.deepEqual(normaliseWeb({}), {
    name: 'web',
    context: '/project',
    from: { kind: 'scratch' },
    steps: [],
    env: [],
    workdir: undefined,
    entrypoint: undefined,
    cmd: undefined,
    user: undefined,
    port: undefined,
    health: undefined,
    labels: {},
  });
});

test('copy and run shorthands become all copies, then all runs', () => {
  const spec = normaliseWeb({
    run: ['npm ci', ['/usr/bin/node', '-e', '1']],
    copy: [
      { src: 'app/', dest: '/app/', exclude: ['*.test.js'], mode: '0755', owner: '1000:1000' },
      { src: 'package.json', dest: '/app/package.json', mode: '644', owner: 7 },
    ],
  });
  assert.deepEqual(spec.steps, [
    { kind: 'copy', key: 'copy[0]', src: 'app/', dest: '/app/', exclude: ['*.test.js'], mode: 0o755, owner: { uid: 1000, gid: 1000 } },
    { kind: 'copy', key: 'copy[1]', src: 'package.json', dest: '/app/package.json', exclude: [], mode: 0o644, owner: { uid: 7, gid: 7 } },
    { kind: 'run', key: 'run[0]', command: 'npm ci' },
    { kind: 'run', key: 'run[1]', command: ['/usr/bin/node', '-e', '1'] },
  ]);
});

test('steps keep their order', () => {
  const spec = normaliseWeb({ steps: [{ run: 'a' }, { copy: { src: '.', dest: '/' } }, { run: ['b'] }] });
  assert.deepEqual(spec.steps, [
    { kind: 'run', key: 'steps[0].run', command: 'a' },
    { kind: 'copy', key: 'steps[1].copy', src: '.', dest: '/', exclude: [], mode: undefined, owner: { uid: 0, gid: 0 } },
    { kind: 'run', key: 'steps[2].run', command: ['b'] },
  ]);
});

test('a string entrypoint or cmd becomes the sh -c form; arrays are kept', () => {
  const spec = normaliseWeb({ entrypoint: 'exec node server.js', cmd: ['--port', '80'] });
  assert.deepEqual(spec.entrypoint, ['/bin/sh', '-c', 'exec node server.js']);
  assert.deepEqual(spec.cmd, ['--port', '80']);
});

test('env keeps its order and turns numbers and booleans into strings', () => {
  const spec = normaliseWeb({ env: { Z_LAST: 'z', A_FIRST: 1, _DEBUG: false, PORT: 8080 } });
  assert.deepEqual(spec.env, [['Z_LAST', 'z'], ['A_FIRST', '1'], ['_DEBUG', 'false'], ['PORT', '8080']]);
});

test('health timings are defaulted and parsed', () => {
  assert.deepEqual(normaliseWeb({ health: { http: '/healthz' } }).health, {
    kind: 'http', path: '/healthz', interval: 10_000, timeout: 3_000, retries: 3, startPeriod: 0,
  });
  assert.deepEqual(
    normaliseWeb({ health: { command: ['pg_isready'], interval: '1m30s', timeout: 2, retries: 5, startPeriod: '250ms' } }).health,
    { kind: 'command', command: ['pg_isready'], interval: 90_000, timeout: 2_000, retries: 5, startPeriod: 250 },
  );
});

test('from is scratch, a stored image in canonical form, or host executables', () => {
  assert.deepEqual(normaliseWeb({ from: 'scratch' }).from, { kind: 'scratch' });
  assert.deepEqual(normaliseWeb({ from: 'base' }).from, { kind: 'image', ref: 'base:latest' });
  assert.deepEqual(normaliseWeb({ from: 'team/base:1.4' }).from, { kind: 'image', ref: 'team/base:1.4' });
  assert.deepEqual(normaliseWeb({ from: `base@${DIGEST}` }).from, { kind: 'image', ref: `base@${DIGEST}` });
  assert.deepEqual(normaliseWeb({ from: DIGEST }).from, { kind: 'image', ref: DIGEST });
  assert.deepEqual(normaliseWeb({ from: { host: 'node' } }).from, { kind: 'host', executables: ['node'] });
  assert.deepEqual(normaliseWeb({ from: { host: ['node', '/usr/bin/busybox'] } }).from, {
    kind: 'host', executables: ['node', '/usr/bin/busybox'],
  });
});

test('context resolves against the config folder; name is the key', () => {
  const config = normaliseConfig({ images: { 'team/web': { context: 'services/web' }, 'db.v2': { context: '../shared' } } }, FILE);
  assert.equal(config.images['team/web']?.name, 'team/web');
  assert.equal(config.images['team/web']?.context, '/project/services/web');
  assert.equal(config.images['db.v2']?.context, '/shared');
});

test('the rest is copied through', () => {
  const spec = normaliseWeb({ workdir: '/app', user: 1000, port: 8080, labels: { team: 'web' } });
  assert.equal(spec.workdir, '/app');
  assert.equal(spec.user, '1000');
  assert.equal(spec.port, 8080);
  assert.deepEqual(spec.labels, { team: 'web' });
});

test('top-level x- keys hold YAML anchors and are ignored', () => {
  const config = normaliseConfig({ 'x-common': { env: { A: '1' } }, images: { web: { env: { A: '1' } } } }, '/srv/imago.yaml');
  assert.deepEqual(Object.keys(config.images), ['web']);
});

test('an image cannot build on its own latest bake; a pinned one is fine', () => {
  assert.throws(
    () => normaliseConfig({ images: { web: { from: 'web' } } }, '/srv/imago.yaml'),
    { message: '/srv/imago.yaml: images.web.from: expected another image, got "web:latest" (an image cannot build on its own latest bake; pin one, like "web:3")' },
  );
  assert.equal(normaliseConfig({ images: { web: { from: 'web:3' } } }, '/srv/imago.yaml').images.web!.from.kind, 'image');
});

test('docker.io names are the short names', () => {
  const config = normaliseConfig({ images: { web: { from: 'docker.io/library/base:1' } } }, '/srv/imago.yaml');
  assert.deepEqual(config.images.web!.from, { kind: 'image', ref: 'base:1' });
});
