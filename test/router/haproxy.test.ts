import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backend } from '../support/backends.js';
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

describe('haproxy: privileges', () => {
  it('runs its workers as an unprivileged user shut in an empty folder when imago is root, and as imago when not', async () => {
    const router = new HaproxyRouter('web', { host: '127.0.0.1', port: 0, protocol: 'http' }, join(root, 'privileges'));
    after(() => router.stop());
    const { port } = await router.start();
    const workers = childrenOf(router.pid!);
    assert.ok(workers.length > 0, 'the master has a worker');
    for (const worker of workers) {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))?.[1]);
      if (process.getuid!() === 0) {
        assert.notEqual(uid, 0, `worker ${worker} dropped root`);
        assert.equal(readlinkSync(`/proc/${worker}/root`), join(root, 'privileges', 'empty'), 'shut in the empty folder');
      } else assert.equal(uid, process.getuid!());
    }
    // It still routes: the workers need nothing the chroot took away.
    const a = await backend('a');
    await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'a');
  });
});
