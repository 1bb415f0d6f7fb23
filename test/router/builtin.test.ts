import { join } from 'node:path';
import { BuiltinRouter } from '../../src/router/builtin/builtin-router.js';
import { PID_FILE } from '../../src/router/builtin/protocol.js';
import { tempDir } from '../support/temp.js';
import { processRouterSuite } from './process-suite.js';
import { routerSuite } from './router-suite.js';

const root = await tempDir('imago-routers-');
let n = 0;
routerSuite('built-in, its own process', (service, listen) => new BuiltinRouter(service, listen, join(root, `r${++n}`)));
processRouterSuite('built-in', { make: (listen, folder) => new BuiltinRouter('web', listen, folder), pidFile: PID_FILE, processes: (pid) => [pid] });
