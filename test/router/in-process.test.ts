import { InProcessRouter } from '../../src/router/in-process.js';
import { routerSuite } from './router-suite.js';

routerSuite('built-in engine, in-process', (service, listen) => new InProcessRouter(service, listen));
