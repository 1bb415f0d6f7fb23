import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { runProviderSuite } from './provider-suite.js';

runProviderSuite('docker', {
  newProvider: (store) => new DockerProvider(store),
  // Named volumes outlive every container by design; a test's are removed with its home.
  cleanUp: (provider) => (provider as DockerProvider).removeVolumes(),
});
