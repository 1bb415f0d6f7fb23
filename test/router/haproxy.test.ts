import { join } from 'node:path';
import { HaproxyRouter } from '../../src/router/haproxy/haproxy-router.js';
import { tempDir } from '../support/temp.js';
import { childrenOf } from '../../src/util/pids.js';
import { processRouterSuite } from './process-suite.js';
import { routerSuite } from './router-suite.js';

const root = await tempDir('imago-haproxy-');
let n = 0;
routerSuite('haproxy', (service, listen) => new HaproxyRouter(service, listen, join(root, `r${++n}`)));
// The master and its workers: the workers answer the runtime API.
processRouterSuite('haproxy', { make: (listen, folder) => new HaproxyRouter('web', listen, folder), pidFile: 'haproxy.pid', processes: (pid) => [pid, ...childrenOf(pid)] });
