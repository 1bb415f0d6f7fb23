import { FakeProvider, FakeWorld } from '../../src/providers/fake/fake-provider.js';
import type { ImageStore } from '../../src/store/image-store.js';
import { runProviderSuite } from './provider-suite.js';

// One world per store: a second provider object on it is a restarted control plane.
const worlds = new WeakMap<ImageStore, FakeWorld>();
const worldOf = (store: ImageStore) => {
  if (!worlds.has(store)) worlds.set(store, new FakeWorld());
  return worlds.get(store)!;
};

runProviderSuite('fake', {
  newProvider: (store) => new FakeProvider({ world: worldOf(store), store, serveHttp: true }),
  skip: [
    {
      reason: 'the fake runs no sandbox: it models the contract (lifecycle, labels, volumes, exits), not isolation, which the real providers test',
      tests: ['runs as the image user, alone in its pid namespace', 'cannot write to its root filesystem, can write to a private /tmp'],
    },
    {
      reason: 'the fake runs no process of its own: it has no CPU or memory to read (usage is optional in the Provider contract)',
      tests: ['reads the CPU and memory of a running instance, and none of one that is gone'],
    },
  ],
});
