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
    protocol: 'http',
    keepPrevious: 0,
    health: undefined,
    strategy: { kind: 'rolling', maxSurge: { kind: 'count', value: 1 }, maxUnavailable: { kind: 'count', value: 0 } },
    env: [],
    volumes: {},
    stopGrace: 10_000,
    drainTimeout: 30_000,
    deployTimeout: 120_000,
    resources: { memory: 1024 ** 3, pids: 1024 },
    provider: 'process',
    maxAge: undefined,
    maxAgeJitter: 0.1,
    drift: 'replace',
    backoff: { initial: 1000, max: 300_000, reset: 600_000 },
    secrets: [],
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
          maxAge: '7d',
          maxAgeJitter: '5%',
          drift: 'report',
          backoff: { initial: '500ms', max: '1m' },
        },
        api: { image: 'api', strategy: 'blue-green', listen: 9091, health: { command: 'true' } },
      },
    },
    FILE,
  );
  const web = config.services.web!;
  assert.deepEqual(web.listen, { host: '127.0.0.1', port: 9090 });
  assert.deepEqual(web.health, { check: { kind: 'http', path: '/healthz' }, interval: 500, timeout: 1000, startPeriod: 0, startInterval: 100, healthyThreshold: 1, unhealthyThreshold: 2 });
  assert.equal(web.maxAge, 7 * 86_400_000);
  assert.equal(web.maxAgeJitter, 0.05);
  assert.equal(web.drift, 'report');
  assert.deepEqual(web.backoff, { initial: 500, max: 60_000, reset: 600_000 });
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
  ['two services whose volumes would make one Docker volume', { services: { web: { image: 'w', volumes: { 'data-x': '/data' } }, 'web-data': { image: 'w', volumes: { x: '/x' } } } },
    ['services.web-data.volumes.x: this volume and volume "data-x" of service "web" would share one Docker volume, imago-<scope>-web-data-x (its name joins service and volume with "-"): rename one of them']],
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
    ['services.web.replica: unknown key (expected one of: image, replicas, port, listen, protocol, keepPrevious, health, strategy, env, volumes, stopGrace, drainTimeout, deployTimeout, resources, provider, maxAge, maxAgeJitter, drift, backoff, secrets)']],
  ['a max age under a second', { services: { web: { image: 'w', maxAge: '500ms' } } },
    ['services.web.maxAge: expected a duration from 1s to 365d like "24h", "7d" or "90m", got "500ms"']],
  ['a max age over a year', { services: { web: { image: 'w', maxAge: '400d' } } },
    ['services.web.maxAge: expected a duration from 1ms to 365d like "5s", "1m30s" or "250ms", got "400d"']],
  ['a jitter over 50%', { services: { web: { image: 'w', maxAgeJitter: '80%' } } },
    ['services.web.maxAgeJitter: expected a percentage from 0% to 50% like "10%", got "80%"']],
  ['a jitter as a bare number', { services: { web: { image: 'w', maxAgeJitter: 0.1 } } },
    ['services.web.maxAgeJitter: expected a percentage from 0% to 50% like "10%", got 0.1']],
  ['an unknown drift policy', { services: { web: { image: 'w', drift: 'ignore' } } },
    ['services.web.drift: expected "replace" or "report", got "ignore"']],
  ['an unknown back-off key', { services: { web: { image: 'w', backoff: { cap: '5m' } } } },
    ['services.web.backoff.cap: unknown key (expected one of: initial, max, reset)']],
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

test('one service as a client sent it is normalised with the same schema, and its errors name the key path', async () => {
  const { normaliseService } = await import('../../src/config/normalise.js');
  const raw = { image: 'hello', replicas: 3, health: { http: '/healthz', interval: '1s' }, maxAge: '24h' };
  assert.deepEqual(normaliseService('web', raw), normaliseConfig({ services: { web: raw } }, FILE).services.web);
  assert.throws(() => normaliseService('web', { image: 'hello', replicas: -1, extra: 1 }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.message, [
      '2 problems:',
      '  services.web.replicas: expected a whole number of instances from 0 to 1000, got -1',
      '  services.web.extra: unknown key (expected one of: image, replicas, port, listen, protocol, keepPrevious, health, strategy, env, volumes, stopGrace, drainTimeout, deployTimeout, resources, provider, maxAge, maxAgeJitter, drift, backoff, secrets)',
    ].join('\n'));
    return true;
  });
  assert.throws(() => normaliseService('Bad Name', { image: 'hello' }), /services\["Bad Name"\]: expected a service name/);
});

test('a stored spec reads back as it was normalised, with its schema version; a bad row is named', async () => {
  const { readServiceSpec, storeServiceSpec, SERVICE_SPEC_VERSION } = await import('../../src/config/stored-spec.js');
  const spec = normaliseConfig({ services: { web: { image: 'hello', replicas: 2, listen: 9000, health: { http: '/h' }, maxAge: '1h', strategy: { type: 'rolling', maxSurge: '25%' } } } }, FILE).services.web!;
  const stored = storeServiceSpec(spec);
  assert.equal(stored.schemaVersion, SERVICE_SPEC_VERSION);
  assert.deepEqual(readServiceSpec(JSON.parse(JSON.stringify(stored)), 'release 1'), spec);
  assert.throws(() => readServiceSpec({ ...stored, replicas: 'three' }, "release 4 of 'web'"), /^ConfigError: release 4 of 'web': its stored service spec is not one this imago understands: replicas: Invalid input: expected number, received string$/);
  assert.throws(() => readServiceSpec({ ...stored, schemaVersion: 9 }, 'release 5'), /release 5: its service spec has schema version 9, and this imago reads 1 to 4: upgrade imago/);
  // A row from before versions: the keys added since come with their defaults.
  const { schemaVersion: _, maxAge: __, maxAgeJitter: ___, drift: ____, backoff: _____, ...legacy } = stored;
  const { startInterval: ______, ...legacyHealth } = legacy.health as Record<string, unknown>;
  const upgraded = readServiceSpec(JSON.parse(JSON.stringify({ ...legacy, health: legacyHealth })), 'release 1');
  assert.deepEqual([upgraded.maxAge, upgraded.drift, upgraded.backoff.max, upgraded.health?.startInterval], [undefined, 'replace', 300_000, 100]);
});

test('the data plane keys: protocol, keepPrevious, and listen with TLS files relative to the config', async () => {
  const config = normaliseConfig(
    { services: { web: { image: 'hello', protocol: 'tcp', keepPrevious: '30s', listen: { address: '0.0.0.0:443', tls: { cert: 'certs/web.crt', key: '/etc/imago/web.key' } } } } },
    FILE,
  );
  const web = config.services.web!;
  assert.equal(web.protocol, 'tcp');
  assert.equal(web.keepPrevious, 30_000);
  assert.deepEqual(web.listen, { host: '0.0.0.0', port: 443, tls: { cert: '/project/certs/web.crt', key: '/etc/imago/web.key' } });
  assert.deepEqual(normaliseConfig({ services: { web: { image: 'hello', listen: { address: 8080 } } } }, FILE).services.web!.listen, { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(problems({ services: { web: { image: 'w', protocol: 'udp' } } }), ['services.web.protocol: expected "http" or "tcp", got "udp"']);
  assert.match(problems({ services: { web: { image: 'w', listen: { address: '127.0.0.1:443', tls: { cert: 'a.crt' } } } } }).join('\n'), /services\.web\.listen/);
  // A client's service (no config file to resolve against) must name absolute files.
  const { normaliseService } = await import('../../src/config/normalise.js');
  assert.throws(() => normaliseService('web', { image: 'hello', listen: { address: '127.0.0.1:443', tls: { cert: 'web.crt', key: '/k' } } }), /services\.web\.listen\.tls\.cert: expected an absolute path .*got "web\.crt"/);
});

test('a spec stored at version 2 reads back with the data plane defaults', async () => {
  const { readServiceSpec, storeServiceSpec } = await import('../../src/config/stored-spec.js');
  const stored = storeServiceSpec(normaliseConfig({ services: { web: { image: 'hello' } } }, FILE).services.web!);
  const { protocol, keepPrevious, ...v2 } = { ...stored, schemaVersion: 2 } as Record<string, unknown>;
  assert.deepEqual([protocol, keepPrevious], ['http', 0]);
  const spec = readServiceSpec(v2, 'release 1');
  assert.equal(spec.protocol, 'http');
  assert.equal(spec.keepPrevious, 0);
});
