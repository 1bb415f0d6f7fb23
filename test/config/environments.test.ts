import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceKey, splitServiceKey, withOverrides } from '../../src/config/environments.js';
import { normaliseConfig, serviceInEnvironment } from '../../src/config/normalise.js';
import { ConfigError } from '../../src/errors.js';

const base = { image: 'web', replicas: 1, env: { LOG: 'debug', REGION: 'eu' }, health: { http: '/healthz' } };
const raw = (extra: Record<string, unknown> = {}) => ({ services: { web: base }, ...extra });
const refused = (value: unknown, pattern: RegExp) => assert.throws(() => normaliseConfig(value, '/p/imago.yaml'), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));

describe('environments in the config', () => {
  it('none declared: no default environment, services as written', () => {
    const config = normaliseConfig(raw(), '/p/imago.yaml');
    assert.deepEqual(config.environments, {});
    assert.equal(config.defaultEnvironment, undefined);
    assert.equal(serviceInEnvironment(config, base, 'web', undefined).spec.replicas, 1);
  });

  it('the default is the one named, else the first declared; minSoak parsed, 0 by default', () => {
    const envs = { dev: null, prod: { minSoak: '1h', services: { web: { replicas: 3 } } } };
    assert.equal(normaliseConfig(raw({ environments: envs }), '/p/imago.yaml').defaultEnvironment, 'dev');
    const config = normaliseConfig(raw({ environments: envs, defaultEnvironment: 'prod' }), '/p/imago.yaml');
    assert.equal(config.defaultEnvironment, 'prod');
    assert.equal(config.environments.prod!.minSoak, 3_600_000);
    assert.equal(config.environments.dev!.minSoak, 0);
  });

  it("an environment's overrides replace the service's keys, and add to its env variable by variable", () => {
    const config = normaliseConfig(raw({ environments: { prod: { services: { web: { replicas: 3, listen: 8443, env: { LOG: 'warn' }, health: { http: '/ready' } } } } } }), '/p/imago.yaml');
    const { written, spec } = serviceInEnvironment(config, base, 'web', 'prod');
    assert.deepEqual(written.env, { LOG: 'warn', REGION: 'eu' });
    assert.equal(spec.replicas, 3);
    assert.deepEqual(spec.listen, { host: '127.0.0.1', port: 8443 });
    assert.deepEqual(spec.env, [['LOG', 'warn'], ['REGION', 'eu']]);
    assert.deepEqual(spec.health?.check, { kind: 'http', path: '/ready' });
    assert.equal(spec.image, 'web');
  });

  it('relative TLS files of an override are resolved against the config folder', () => {
    const config = normaliseConfig(raw({ environments: { prod: { services: { web: { listen: { address: '0.0.0.0:443', tls: { cert: 'certs/web.crt', key: 'certs/web.key' } } } } } } }), '/p/imago.yaml');
    assert.deepEqual(serviceInEnvironment(config, base, 'web', 'prod').spec.listen?.tls, { cert: '/p/certs/web.crt', key: '/p/certs/web.key' });
  });

  it('refuses an override of what the image is, naming the key and what may change', () => {
    refused(raw({ environments: { prod: { services: { web: { image: 'other' } } } } }), /environments\.prod\.services\.web\.image: unknown key \(expected one of: replicas, listen, /);
    refused(raw({ environments: { prod: { services: { web: { volumes: { data: '/data' } } } } } }), /environments\.prod\.services\.web\.volumes: unknown key/);
  });

  it('refuses a bad environment name, an unknown service, a bad minSoak and an unknown default', () => {
    refused(raw({ environments: { Prod: {} } }), /environments.*expected an environment name of lowercase letters/);
    refused(raw({ environments: { prod: { services: { api: { replicas: 2 } } } } }), /environments\.prod\.services\.api: no service "api" under services \(expected one of web\)/);
    refused(raw({ environments: { prod: { minSoak: 'soon' } } }), /environments\.prod\.minSoak: expected a duration from 0s to 365d/);
    refused(raw({ environments: { prod: {} }, defaultEnvironment: 'staging' }), /defaultEnvironment: expected one of prod, got "staging"/);
    refused(raw({ defaultEnvironment: 'prod' }), /defaultEnvironment: expected an environment declared under environments \(there is none\)/);
  });

  it('an environment the config does not declare is an error naming those it does', () => {
    const config = normaliseConfig(raw({ environments: { dev: {}, prod: {} } }), '/p/imago.yaml');
    assert.throws(() => serviceInEnvironment(config, base, 'web', 'staging'), /unknown environment "staging": expected one of dev, prod/);
    const none = normaliseConfig(raw(), '/p/imago.yaml');
    assert.throws(() => serviceInEnvironment(none, base, 'web', 'prod'), /the config declares none/);
  });
});

describe('service keys', () => {
  it('the home environment keeps bare names; any other is name@env, and splits back', () => {
    assert.equal(serviceKey('web', 'default', 'default'), 'web');
    assert.equal(serviceKey('web', 'prod', 'default'), 'web@prod');
    assert.equal(serviceKey('web', 'staging', 'staging'), 'web');
    assert.deepEqual(splitServiceKey('web@prod', 'default'), { name: 'web', env: 'prod' });
    assert.deepEqual(splitServiceKey('web.api', 'staging'), { name: 'web.api', env: 'staging' });
  });

  it('withOverrides leaves the service as written untouched', () => {
    const service = { replicas: 1, env: { A: '1' } };
    const merged = withOverrides(service, { env: { B: '2' } });
    assert.deepEqual(merged, { replicas: 1, env: { A: '1', B: '2' } });
    assert.deepEqual(service, { replicas: 1, env: { A: '1' } });
  });
});
