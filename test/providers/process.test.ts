import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import { runProviderSuite } from './provider-suite.js';

runProviderSuite('process', { newProvider: (store) => new ProcessProvider(store) });
