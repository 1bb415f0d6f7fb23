import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bakeOrder } from '../../src/bake/bake-order.js';
import type { ImagoConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { imageSpec } from '../support/spec.js';

function config(froms: Record<string, string | undefined>): ImagoConfig {
  const images = Object.fromEntries(
    Object.entries(froms).map(([name, ref]) => [name, imageSpec({ name, context: '/c', from: ref ? { kind: 'image', ref } : { kind: 'scratch' } })]),
  );
  return { file: '/c/imago.yaml', root: '/c', images, services: {}, environments: {}, defaultEnvironment: undefined };
}

describe('bakeOrder', () => {
  it('bakes a base declared in the same config first', () => {
    const order = bakeOrder(config({ web: 'base:latest', base: undefined }), []).map((s) => s.name);
    assert.deepEqual(order, ['base', 'web']);
  });

  it('bakes the declared base of a named image too', () => {
    assert.deepEqual(
      bakeOrder(config({ web: 'base:latest', base: undefined, other: undefined }), ['web']).map((s) => s.name),
      ['base', 'web'],
    );
  });

  it('treats a pinned tag as a stored image, not a dependency', () => {
    assert.deepEqual(
      bakeOrder(config({ web: 'base:7', base: undefined }), ['web']).map((s) => s.name),
      ['web'],
    );
  });

  it('refuses unknown names and cycles', () => {
    assert.throws(() => bakeOrder(config({ web: undefined }), ['api']), (e: ConfigError) => /unknown image "api": expected one of web/.test(e.message));
    assert.throws(() => bakeOrder(config({ a: 'b:latest', b: 'a:latest' }), []), /cycle: a → b → a/);
    assert.throws(() => bakeOrder({ file: '/c/imago.yaml', root: '/c', images: {}, services: {}, environments: {}, defaultEnvironment: undefined }, []), /no images are declared/);
  });
});
