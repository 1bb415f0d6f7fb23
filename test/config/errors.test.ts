import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseConfig } from '../../src/config/normalise.js';
import { ConfigError } from '../../src/errors.js';

const FILE = '/project/imago.yaml';
const IMAGE_KEYS = 'context, from, copy, run, steps, env, workdir, entrypoint, cmd, user, port, health, labels';

/** The problem lines of the ConfigError thrown for `raw` (the file prefix and count removed). */
function problems(raw: unknown): string[] {
  try {
    normaliseConfig(raw, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.file, FILE);
    assert.equal(error.exitCode, 2);
    const message = error.message.slice(`${FILE}: `.length);
    const lines = message.split('\n');
    return lines.length === 1 ? lines : lines.slice(1).map((line) => line.trim());
  }
  assert.fail('expected normaliseConfig to throw');
}

/** A config with one image `web` made of `image`. */
const web = (image: Record<string, unknown>) => ({ images: { web: image } });

const cases: Array<[string, unknown, string[]]> = [
  ['copy src outside the context', web({ copy: [{ src: 'app/', dest: '/app' }, { src: '../secrets', dest: '/s' }] }),
    ['images.web.copy[1].src: expected a path inside the build context, got "../secrets"']],
  ['copy src that normalises outside', web({ copy: [{ src: 'a/../../x', dest: '/x' }] }),
    ['images.web.copy[0].src: expected a path inside the build context, got "a/../../x"']],
  ['absolute copy src', web({ copy: [{ src: '/etc/passwd', dest: '/x' }] }),
    ['images.web.copy[0].src: expected a path inside the build context, got "/etc/passwd"']],
  ['relative dest', web({ copy: [{ src: 'a', dest: 'app' }] }),
    ['images.web.copy[0].dest: expected an absolute path without ".." segments, like "/app", got "app"']],
  ['missing dest', web({ copy: [{ src: 'a' }] }),
    ['images.web.copy[0].dest: expected an absolute path without ".." segments, like "/app", got nothing']],
  ['workdir with ..', web({ workdir: '/app/../etc' }),
    ['images.web.workdir: expected an absolute path without ".." segments, like "/app", got "/app/../etc"']],
  ['unknown top-level key', { images: {}, providers: {} },
    ['providers: unknown key (expected one of: images, services, environments, defaultEnvironment)']],
  ['unknown image key', web({ colour: 'blue' }),
    [`images.web.colour: unknown key (expected one of: ${IMAGE_KEYS})`]],
  ['unknown copy key', web({ copy: [{ src: 'a', dest: '/a', chmod: '755' }] }),
    ['images.web.copy[0].chmod: unknown key (expected one of: src, dest, exclude, mode, owner)']],
  ['unknown health key', web({ health: { http: '/', every: '5s' } }),
    ['images.web.health.every: unknown key (expected one of: http, command, interval, timeout, retries, startPeriod)']],
  ['unknown host key', web({ from: { host: 'node', libs: [] } }),
    ['images.web.from.libs: unknown key (expected one of: host)']],
  ['port 0', web({ port: 0 }), ['images.web.port: expected a port number from 1 to 65535, got 0']],
  ['port 70000', web({ port: 70000 }), ['images.web.port: expected a port number from 1 to 65535, got 70000']],
  ['port "http"', web({ port: 'http' }), ['images.web.port: expected a port number from 1 to 65535, got "http"']],
  ['port 80.5', web({ port: 80.5 }), ['images.web.port: expected a port number from 1 to 65535, got 80.5']],
  ['bad duration', web({ health: { http: '/healthz', interval: 'fast' } }),
    ['images.web.health.interval: expected a duration from 1ms to 24h like "5s", "1m30s" or "250ms", got "fast"']],
  ['negative duration', web({ health: { http: '/healthz', timeout: -1 } }),
    ['images.web.health.timeout: expected a duration from 1ms to 24h like "5s", "1m30s" or "250ms", got -1']],
  ['duration of the wrong type', web({ health: { http: '/healthz', startPeriod: true } }),
    ['images.web.health.startPeriod: expected a duration from 0s to 24h like "0s", "5s" or "1m30s", got true']],
  ['both http and command', web({ health: { http: '/', command: 'true' } }),
    ['images.web.health: expected exactly one of http or command, got an object']],
  ['neither http nor command', web({ health: { interval: '5s' } }),
    ['images.web.health: expected exactly one of http or command, got an object']],
  ['http path without a slash', web({ health: { http: 'healthz' } }),
    ['images.web.health.http: expected an HTTP path starting with "/", got "healthz"']],
  ['retries 0', web({ health: { command: ['true'], retries: 0 } }),
    ['images.web.health.retries: expected a whole number of at least 1, got 0']],
  ['steps with copy', web({ copy: [{ src: 'a', dest: '/a' }], steps: [{ run: 'true' }] }),
    ['images.web.steps: cannot be combined with copy or run: use steps alone, or copy and run']],
  ['steps with run and another problem', web({ run: ['true'], steps: [{ run: 'true' }], port: 0 }),
    ['images.web.port: expected a port number from 1 to 65535, got 0',
      'images.web.steps: cannot be combined with copy or run: use steps alone, or copy and run']],
  ['a step with both copy and run', web({ steps: [{ copy: { src: 'a', dest: '/a' }, run: 'x' }] }),
    ['images.web.steps[0]: expected exactly one of copy or run, got an object']],
  ['a step with an unknown key', web({ steps: [{ exec: 'x' }] }),
    ['images.web.steps[0].exec: unknown key (expected one of: copy, run)',
      'images.web.steps[0]: expected exactly one of copy or run, got an object']],
  ['a bad copy inside a step', web({ steps: [{ copy: { src: '../x', dest: '/a' } }] }),
    ['images.web.steps[0].copy.src: expected a path inside the build context, got "../x"']],
  ['a bad image name', { images: { 'Web App': {} } },
    ['images["Web App"]: expected an image name of lowercase letters and digits with ".", "_" or "-" separators and optional "/" parts, got "Web App"']],
  ['an upper-case image name', { images: { Web: {} } },
    ['images.Web: expected an image name of lowercase letters and digits with ".", "_" or "-" separators and optional "/" parts, got "Web"']],
  ['a bad from reference', web({ from: 'Node:20' }),
    ['images.web.from: expected an image reference like "web", "web:1.4" or "sha256:…", got "Node:20"']],
  ['a bad digest', web({ from: 'sha256:abc' }),
    ['images.web.from: expected sha256:<64 lowercase hex digits>, got "sha256:abc"']],
  ['from of the wrong type', web({ from: 5 }),
    ['images.web.from: expected "scratch", an image reference like "web:1.4", or { host: [...] }, got 5']],
  ['a relative host executable', web({ from: { host: ['node', 'bin/sh'] } }),
    ['images.web.from.host[1]: expected an executable name or an absolute path, got "bin/sh"']],
  ['an empty host list', web({ from: { host: [] } }),
    ['images.web.from.host: expected an executable name, an absolute path, or a non-empty array of them, got an empty array']],
  ['a bad exec-form element', web({ cmd: ['node', 5] }), ['images.web.cmd[1]: expected a string, got 5']],
  ['an empty run command', web({ run: [''] }),
    ['images.web.run[0]: expected a command string or a non-empty array of strings, got ""']],
  ['an entrypoint object', web({ entrypoint: { sh: 1 } }),
    ['images.web.entrypoint: expected a command string or a non-empty array of strings, got an object']],
  ['a bad env name', web({ env: { 'NODE-ENV': 'x' } }),
    ['images.web.env.NODE-ENV: expected an environment variable name like NODE_ENV, got "NODE-ENV"']],
  ['a null env value', web({ env: { A: null } }), ['images.web.env.A: expected a string, number or boolean, got null']],
  ['a numeric label value', web({ labels: { tier: 1 } }), ['images.web.labels.tier: expected a string, got 1']],
  ['an empty label key', web({ labels: { '': 'x' } }), ['images.web.labels[""]: expected a non-empty label key, got ""']],
  ['a bad mode', web({ copy: [{ src: 'a', dest: '/a', mode: '0999' }] }),
    ['images.web.copy[0].mode: expected an octal mode like "0755" or "644", got "0999"']],
  ['a bad owner', web({ copy: [{ src: 'a', dest: '/a', owner: 'app' }] }),
    ['images.web.copy[0].owner: expected a numeric owner like "1000" or "1000:1000" (ids up to 2097151), got "app"']],
  ['an owner too large for a tar header', web({ copy: [{ src: 'a', dest: '/a', owner: '3000000:1' }] }),
    ['images.web.copy[0].owner: expected a numeric owner like "1000" or "1000:1000" (ids up to 2097151), got "3000000:1"']],
  ['a bad user', web({ user: 'a b' }), ['images.web.user: expected a user like "1000:1000" or "app", got "a b"']],
  ['images not an object', { images: ['web'] }, ['images: expected an object of image name: image, got an array']],
  ['an image that is a string', { images: { web: 'node' } }, ['images.web: expected an object describing an image, got "node"']],
  ['a config that is an array', [], ['expected an object with "images", "services", "environments" and "defaultEnvironment" keys, got an empty array']],
];

for (const [name, raw, expected] of cases) {
  test(`rejects ${name}`, () => assert.deepEqual(problems(raw), expected));
}

test('one problem is one line after the file; many are counted and listed one per line', () => {
  assert.throws(() => normaliseConfig(web({ port: 0 }), FILE), {
    message: `${FILE}: images.web.port: expected a port number from 1 to 65535, got 0`,
  });
  assert.throws(() => normaliseConfig(web({ port: 0, workdir: 'app' }), FILE), {
    message: `${FILE}: 2 problems:\n  images.web.workdir: expected an absolute path without ".." segments, like "/app", got "app"\n  images.web.port: expected a port number from 1 to 65535, got 0`,
  });
});

test('at most 20 problems are listed, the rest counted', () => {
  const images = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`web${i}`, { port: 0 }]));
  const lines = (() => {
    try {
      normaliseConfig({ images }, FILE);
    } catch (error) {
      return (error as Error).message.split('\n');
    }
    return [];
  })();
  assert.equal(lines[0], `${FILE}: 25 problems:`);
  assert.equal(lines.length, 22);
  assert.equal(lines.at(-1), '  ... and 5 more');
});
