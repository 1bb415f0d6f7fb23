// The hello image of examples/hello/imago.yaml, written in TypeScript: `defineConfig` makes
// an editor complete and check every key. Run `imago bake` in this folder.
import { defineConfig } from 'imago';

export default defineConfig({
  images: {
    hello: {
      context: '../hello',
      from: { host: ['node', 'busybox'] },
      copy: [{ src: 'app/', dest: '/app', exclude: ['*.test.js'] }],
      run: ['busybox mkdir -p /var/lib/hello'],
      env: { APP_VERSION: '1', NODE_ENV: 'production' },
      workdir: '/app',
      entrypoint: ['/usr/bin/node'],
      cmd: ['server.js'],
      user: '1000:1000',
      port: 8080,
      health: { http: '/healthz', interval: '2s', timeout: '1s', retries: 3, startPeriod: '5s' },
      labels: { 'org.opencontainers.image.title': 'hello' },
    },
  },
});
