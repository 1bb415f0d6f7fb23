import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineConfig } from '../../src/config/index.js';

test('defineConfig returns its argument and its type accepts every documented key', () => {
  const config = {
    images: {
      hello: {
        context: '../hello',
        from: { host: ['node', 'busybox'] },
        copy: [{ src: 'app/', dest: '/app', exclude: ['*.test.js'], mode: '0755', owner: '1000:1000' }],
        run: ['busybox mkdir -p /var/lib/hello', ['/usr/bin/node', '-e', '1']],
        env: { APP_VERSION: 1, NODE_ENV: 'production', DEBUG: false },
        workdir: '/app',
        entrypoint: ['/usr/bin/node'],
        cmd: 'server.js',
        user: '1000:1000',
        port: 8080,
        health: { http: '/healthz', interval: '2s', timeout: 1, retries: 3, startPeriod: '5s' },
        labels: { 'org.opencontainers.image.title': 'hello' },
      },
      base: { from: 'scratch', steps: [{ copy: { src: '.', dest: '/' } }, { run: 'true' }] },
    },
  };
  assert.equal(defineConfig(config), config);
});

test('defineConfig\'s type refuses unknown keys and wrong types (checked by tsc)', () => {
  // @ts-expect-error: unknown key
  defineConfig({ images: { web: { colour: 'blue' } } });
  // @ts-expect-error: port is a number
  defineConfig({ images: { web: { port: '80' } } });
  // @ts-expect-error: an environment cannot change a service's image
  defineConfig({ services: { web: { image: 'web' } }, environments: { prod: { services: { web: { image: 'other' } } } } });
  // @ts-expect-error: a service needs an image
  defineConfig({ services: { web: { replicas: 3 } } });
});
