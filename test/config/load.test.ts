import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findConfigFile, loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const DEFINE_CONFIG = fileURLToPath(new URL('../../src/config/define-config.ts', import.meta.url));
const folders: string[] = [];
after(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A fresh temp folder holding `files`. */
function folderWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'imago-config-'));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const YAML = `images:
  web:
    context: app
    from: { host: [node] }
    copy:
      - { src: dist/, dest: /app, mode: 0755 }
    env: { NODE_ENV: production, VERSION: 1.10, ZIP: 01234 }
    cmd: node server.js
    port: 8080
    health: { http: /healthz, interval: 5s }
`;

test('loads an imago.yaml found in cwd', async () => {
  const dir = folderWith({ 'imago.yaml': YAML });
  const config = await loadConfig({ cwd: dir });
  assert.equal(config.file, join(dir, 'imago.yaml'));
  assert.equal(config.root, dir);
  const web = config.images.web!;
  assert.equal(web.context, join(dir, 'app'));
  assert.deepEqual(web.from, { kind: 'host', executables: ['node'] });
  assert.deepEqual(web.steps, [{ kind: 'copy', key: 'copy[0]', src: 'dist/', dest: '/app', exclude: [], mode: 0o755, owner: { uid: 0, gid: 0 } }]);
  assert.deepEqual(web.env, [['NODE_ENV', 'production'], ['VERSION', '1.10'], ['ZIP', '01234']]);
  assert.deepEqual(web.cmd, ['/bin/sh', '-c', 'node server.js']);
  assert.equal(web.health?.interval, 5000);
});

test('a YAML mode written without a leading zero is still octal', async () => {
  const dir = folderWith({ 'imago.yml': 'images:\n  web:\n    copy: [{ src: a, dest: /a, mode: 644 }]\n' });
  const config = await loadConfig({ cwd: dir });
  assert.equal((config.images.web?.steps[0] as { mode: number }).mode, 0o644);
});

test('loads an imago.config.ts written with defineConfig, in preference to imago.yaml', async () => {
  const dir = folderWith({
    'imago.yaml': 'images: {}\n',
    'imago.config.ts': `import { defineConfig } from ${JSON.stringify(DEFINE_CONFIG)};
const port: number = 8080;
export default defineConfig({
  images: { api: { from: 'base:1.0', run: ['make'], port, env: { B: 'b', A: 'a' } } },
});
`,
  });
  assert.equal(findConfigFile(dir), join(dir, 'imago.config.ts'));
  const config = await loadConfig({ cwd: dir });
  assert.equal(config.file, join(dir, 'imago.config.ts'));
  assert.deepEqual(Object.keys(config.images), ['api']);
  assert.deepEqual(config.images.api?.from, { kind: 'image', ref: 'base:1.0' });
  assert.deepEqual(config.images.api?.env, [['B', 'b'], ['A', 'a']]);
  assert.equal(config.images.api?.port, 8080);
});

test('a module may export an async function returning the config', async () => {
  const dir = folderWith({ 'imago.config.mjs': 'export default async () => ({ images: { web: { port: 1 } } });\n' });
  const config = await loadConfig({ file: 'imago.config.mjs', cwd: dir });
  assert.equal(config.images.web?.port, 1);
});

test('a module without a default export is a ConfigError', async () => {
  const dir = folderWith({ 'imago.config.js': 'export const images = {};\n' });
  await assert.rejects(loadConfig({ cwd: dir }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /imago\.config\.js: expected a default export .*got nothing$/);
    return true;
  });
});

test('validation errors name the file and the key path', async () => {
  const dir = folderWith({ 'imago.yaml': 'images:\n  web:\n    port: 70000\n' });
  await assert.rejects(loadConfig({ cwd: dir }), {
    name: 'ConfigError',
    message: `${join(dir, 'imago.yaml')}: images.web.port: expected a port number from 1 to 65535, got 70000`,
  });
});

test('a YAML syntax error reports its line and column', async () => {
  const dir = folderWith({ 'imago.yaml': 'images:\n  web:\n    port: 1\n   cmd: x\n', 'dup.yaml': 'images:\n  web: {}\n  web: {}\n' });
  await assert.rejects(loadConfig({ cwd: dir }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.file, join(dir, 'imago.yaml'));
    assert.equal(error.message, `${join(dir, 'imago.yaml')}: invalid YAML: line 4, column 1: All mapping items must start at the same column`);
    return true;
  });
  await assert.rejects(loadConfig({ cwd: dir, file: 'dup.yaml' }), { message: /dup\.yaml: invalid YAML: line 3, column 3: Map keys must be unique$/ });
});

test('a missing explicit file and a folder without config are ConfigErrors that say where', async () => {
  const dir = folderWith({});
  await assert.rejects(loadConfig({ file: 'nope.yaml', cwd: dir }), {
    name: 'ConfigError',
    message: `failed to read config file '${join(dir, 'nope.yaml')}': no such file`,
  });
  await assert.rejects(loadConfig({ file: join(dir, 'nope.config.ts') }), { message: /failed to read config file .*nope\.config\.ts': no such file/ });
  await assert.rejects(loadConfig({ cwd: dir }), {
    name: 'ConfigError',
    message: `no config file found in '${dir}' (looked for imago.config.ts, imago.config.mts, imago.config.js, imago.config.mjs, imago.yaml, imago.yml)`,
  });
  assert.equal(findConfigFile(dir), undefined);
});

test('YAML merge keys work; an alias bomb is a config error, not a crash', async () => {
  const merged = folderWith({
    'imago.yaml': 'x-base: &base\n  env: { A: "1" }\n  port: 80\nimages:\n  web:\n    <<: *base\n    port: 81\n',
  });
  const config = await loadConfig({ cwd: merged });
  assert.deepEqual(config.images.web!.env, [['A', '1']]);
  assert.equal(config.images.web!.port, 81);
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 0; i < 8; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
  const bomb = folderWith({ 'imago.yaml': `${lines.join('\n')}\nimages: {}\n` });
  await assert.rejects(loadConfig({ cwd: bomb }), (e: Error) => e instanceof ConfigError && /imago\.yaml: invalid YAML: .*alias/i.test(e.message));
});

test('--config may name the project folder', async () => {
  const dir = folderWith({ 'imago.yaml': YAML });
  const config = await loadConfig({ file: dir });
  assert.equal(config.file, join(dir, 'imago.yaml'));
  const empty = folderWith({});
  await assert.rejects(loadConfig({ file: empty }), { message: new RegExp(`no config file found in '${empty}'`) });
});

test('a config module that never resolves times out with a config error', async () => {
  const { withTimeout } = await import('../../src/config/read-module.js');
  await assert.rejects(withTimeout(new Promise(() => undefined), 20, '/srv/imago.config.ts'), {
    message: '/srv/imago.config.ts: the default export did not resolve within 0.02s',
  });
});
