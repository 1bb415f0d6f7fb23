import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { runProviderSuite } from './provider-suite.js';

runProviderSuite('docker', { newProvider: (store) => new DockerProvider(store) });
