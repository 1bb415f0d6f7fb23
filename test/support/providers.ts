import type { ProviderName } from '../../src/config/types.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import type { Provider } from '../../src/providers/provider.js';
import type { ImageStore } from '../../src/store/image-store.js';

/** Every provider, for tests that run the same scenario on each. */
export const PROVIDERS: Array<{ name: ProviderName; make: (store: ImageStore) => Provider }> = [
  { name: 'process', make: (store) => new ProcessProvider(store) },
  { name: 'docker', make: (store) => new DockerProvider(store) },
];
