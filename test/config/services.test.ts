import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normaliseConfig } from '../../src/config/normalise.js';
import { ConfigError } from '../../src/errors.js';

const FILE = '/project/imago.yaml';

/** The problem lines of a config that must be refused. */
function problems(raw: unknown): string[] {
  try {
    normaliseConfig(raw, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    const text = error.message.slice(`${FILE}: `.length);
    return text.includes('problems:\n') ? text.split('\n').slice(1).map((l) => l.trim()) : [text];
  }
  throw new Error('expected the config to be refused');
}

test('a minimal service gets every default', () => {
  const config = normaliseConfig({ services: { web: { image: 'hello' } } }, FILE);
  assert.deepEqual(config.services.web, {
    name: 'web',
    image: 'hello',
    replicas: 1,
    port: undefined,
    listen: undefined,
    health: undefined,
    strategy: { kind: 'rolling', maxSurge: { kind: 'count', value: 1 }, maxUnavailable: { kind: 'count', value: 0 } },
    env: [],
    volumes: {},
    stopGrace: 10_000,
    drainTimeout: 30_000,
    deployTimeout: 120_000,
    resources: { memory: 1024 ** 3, pids: 1024 },
    provider: 'process',
  });
});

test('a full service normalises every value', () => {
  const config = normaliseConfig(
    {
      services: {
        web: {
          image: 'hello:3',
          replicas: 3,
          port: 8080,
          listen: '127.0.0.1:9090',
          health: { http: '/healthz', interval: '500ms', unhealthyThreshold: 2 },
          strategy: { type: 'rolling', maxSurge: '50%', maxUnavailable: 1 },
          env: { MODE: 'prod', N: 2 },
          volumes: { data: '/var/lib/hello' },
          stopGrace: '5s',
          drainTimeout: '0s',
          deployTimeout: '1m',
          resources: { memory: '256Mi', pids: 128 },
          provider: 'docker',
        },
        api: { image: 'api', strategy: 'blue-green', listen: 9091, health: { command: 'true' } },
      },
    },
    FILE,
  );
  const web = config.services.web!;
  assert.deepEqual(web.listen, { host: '127.0.0.1', port: 9090 });
  assert.deepEqual(web.health, { check: { kind: 'http', path: '/healthz' }, interval: 500, timeout: 1000, startPeriod: 0, healthyThreshold: 1, unhealthyThreshold: 2 });
  assert.deepEqual(web.strategy, { kind: 'rolling', maxSurge: { kind: 'percent', value: 50 }, maxUnavailable: { kind: 'count', value: 1 } });
  assert.deepEqual(web.env, [['MODE', 'prod'], ['N', '2']]);
  assert.deepEqual(web.volumes, { data: '/var/lib/hello' });
  assert.equal(web.drainTimeout, 0);
  assert.equal(web.deployTimeout, 60_000);
  assert.deepEqual(web.resources, { memory: 256 * 1024 ** 2, pids: 128 });
  assert.equal(web.provider, 'docker');
  const api = config.services.api!;
  assert.deepEqual(api.strategy, { kind: 'blue-green' });
  assert.deepEqual(api.listen, { host: '127.0.0.1', port: 9091 });
  assert.deepEqual(api.health?.check, { kind: 'command', command: 'true' });
});

const cases: Array<[string, unknown, string[]]> = [
  ['replicas -1', { services: { web: { image: 'w', replicas: -1 } } }, ['services.web.replicas: expected a whole number of instances from 0 to 1000, got -1']],
  ['replicas 100000', { services: { web: { image: 'w', replicas: 100000 } } }, ['services.web.replicas: expected a whole number of instances from 0 to 1000, got 100000']],
  ['a bad maxUnavailable', { services: { web: { image: 'w', strategy: { type: 'rolling', maxUnavailable: 'many' } } } },
    ['services.web.strategy.maxUnavailable: expected an integer or a percentage like "25%", got "many"']],
  ['an unknown strategy', { services: { web: { image: 'w', strategy: 'canary' } } },
    ['services.web.strategy: expected "rolling", "blue-green" or { type: rolling, maxSurge: 1, maxUnavailable: 0 }, got "canary"']],
  ['a bad listen', { services: { web: { image: 'w', listen: 'everywhere' } } },
    ['services.web.listen: expected an address like "127.0.0.1:8080", or a port, got "everywhere"']],
  ['a relative volume path', { services: { web: { image: 'w', volumes: { data: 'var/data' } } } },
    ['services.web.volumes.data: expected an absolute path without ".." segments, like "/app", got "var/data"']],
  ['a bad image reference', { services: { web: { image: 'Not An Image' } } },
    ['services.web.image: expected an image reference like "web", "web:1.4" or "sha256:…", got "Not An Image"']],
  ['an unknown provider', { services: { web: { image: 'w', provider: 'k8s' } } },
    ['services.web.provider: expected one of "process", "docker", got "k8s"']],
  ['a memory size without a known unit', { services: { web: { image: 'w', resources: { memory: '2 bananas' } } } },
    ['services.web.resources.memory: expected a memory size from 6Mi to 1Ti like "256Mi", "512m" or "1G", got "2 bananas"']],
  ['a memory size under Docker\'s floor', { services: { web: { image: 'w', resources: { memory: '1m' } } } },
    ['services.web.resources.memory: expected a memory size from 6Mi to 1Ti like "256Mi", "512m" or "1G", got "1m"']],
  ['a pids limit of 0', { services: { web: { image: 'w', resources: { pids: 0 } } } },
    ['services.web.resources.pids: expected a whole number of processes from 16 to 100000, got 0']],
  ['an unknown resource', { services: { web: { image: 'w', resources: { cpu: 2 } } } },
    ['services.web.resources.cpu: unknown key (expected one of: memory, pids)']],
  ['an unknown service key', { services: { web: { image: 'w', replica: 3 } } },
    ['services.web.replica: unknown key (expected one of: image, replicas, port, listen, health, strategy, env, volumes, stopGrace, drainTimeout, deployTimeout, resources, provider)']],
];

for (const [name, raw, expected] of cases) {
  test(`refuses ${name}`, () => assert.deepEqual(problems(raw), expected));
}

test('a service without an image says so', () => {
  const [line] = problems({ services: { web: { replicas: 2 } } });
  assert.match(line!, /^services\.web\.image: expected an image reference/);
});

test('memory sizes read binary units as Docker does, decimal ones as written', async () => {
  const { parseByteSize } = await import('../../src/config/byte-size.js');
  const cases: Array<[string | number, number | 'error']> = [
    ['256Mi', 256 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['100MB', 100 * 1000 ** 2],
    [67108864, 67108864],
    ['64 mi', 64 * 1024 ** 2],
    ['5Mi', 'error'],
    ['2Ti', 'error'],
    [1.5, 'error'],
    ['-1G', 'error'],
    ['G', 'error'],
  ];
  for (const [input, expected] of cases) {
    const parsed = parseByteSize(input);
    if (expected === 'error') assert.ok(typeof parsed === 'object' && 'error' in parsed, `${input} is refused`);
    else assert.equal(parsed, expected, String(input));
  }
});
