import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildImageConfig, DEFAULT_PATH } from '../../src/bake/image-config.js';
import type { ImageConfig } from '../../src/oci/types.js';
import { imageSpec } from '../support/spec.js';

const base: ImageConfig = {
  architecture: 'arm64',
  os: 'linux',
  config: { Env: ['PATH=/base/bin', 'A=1'], Entrypoint: ['/base'], Cmd: ['serve'], WorkingDir: '/srv', ExposedPorts: { '9090/tcp': {} }, Labels: { from: 'base' } },
  rootfs: { type: 'layers', diff_ids: [] },
  history: [{ created_by: 'base layer' }],
};

describe('buildImageConfig', () => {
  it('starts from a default PATH on scratch', () => {
    const config = buildImageConfig({ spec: imageSpec({ context: '/c' }), base: undefined, diffIds: [], history: [], provenance: {} });
    assert.deepEqual(config.config?.Env, [DEFAULT_PATH]);
    assert.equal(config.os, 'linux');
    assert.equal(config.created, '1970-01-01T00:00:00.000Z');
  });

  it('overlays the spec on the base: env by key, ports merged, labels merged and sorted', () => {
    const spec = imageSpec({ context: '/c', env: [['A', '2'], ['B', '3']], port: 8080, labels: { team: 'web' } });
    const config = buildImageConfig({ spec, base, diffIds: [], history: ['copy a /a'], provenance: { 'dev.imago.spec': 'sha256:x' } });
    assert.deepEqual(config.config?.Env, ['PATH=/base/bin', 'A=2', 'B=3']);
    assert.deepEqual(Object.keys(config.config?.ExposedPorts ?? {}), ['8080/tcp', '9090/tcp']);
    assert.deepEqual(config.config?.Labels, { 'dev.imago.spec': 'sha256:x', from: 'base', team: 'web' });
    assert.equal(config.architecture, 'arm64');
    assert.deepEqual(config.config?.Entrypoint, ['/base']);
    assert.deepEqual(config.config?.Cmd, ['serve']);
    assert.equal(config.config?.WorkingDir, '/srv');
    assert.deepEqual(
      config.history?.map((h) => h.created_by),
      ['base layer', 'imago: copy a /a'],
    );
  });

  it('drops the base cmd when the spec sets an entrypoint (as Docker does)', () => {
    const config = buildImageConfig({ spec: imageSpec({ context: '/c', entrypoint: ['/new'] }), base, diffIds: [], history: [], provenance: {} });
    assert.deepEqual(config.config?.Entrypoint, ['/new']);
    assert.equal(config.config?.Cmd, undefined);
  });

  it('records health: a command check as a Docker healthcheck, any check as a label', () => {
    const health = { kind: 'command' as const, command: 'true', interval: 2000, timeout: 1000, retries: 3, startPeriod: 0 };
    const config = buildImageConfig({ spec: imageSpec({ context: '/c', health }), base: undefined, diffIds: [], history: [], provenance: {} });
    assert.deepEqual(config.config?.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 2e9, Timeout: 1e9, StartPeriod: 0, Retries: 3 });
    assert.deepEqual(JSON.parse(config.config?.Labels?.['dev.imago.health'] ?? '{}'), health);
    const http = buildImageConfig({
      spec: imageSpec({ context: '/c', health: { kind: 'http', path: '/healthz', interval: 1, timeout: 1, retries: 1, startPeriod: 0 } }),
      base: undefined,
      diffIds: [],
      history: [],
      provenance: {},
    });
    assert.equal(http.config?.Healthcheck, undefined);
    assert.match(http.config?.Labels?.['dev.imago.health'] ?? '', /"path":"\/healthz"/);
  });
});
