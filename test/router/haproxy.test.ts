import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backend } from '../support/backends.js';
import { HaproxyRouter } from '../../src/router/haproxy/haproxy-router.js';
import { tempDir } from '../support/temp.js';
import { alive, childrenOf, waitForExit } from '../../src/util/pids.js';
import { freePort, requestOnce, waitFor } from '../support/net.js';
import { processRouterSuite } from './process-suite.js';
import { routerSuite } from './router-suite.js';

const root = await tempDir('imago-haproxy-');
let n = 0;
routerSuite('haproxy', (service, listen) => new HaproxyRouter(service, listen, join(root, `r${++n}`)));
// The master and its workers: the workers answer the runtime API.
processRouterSuite('haproxy', { make: (listen, folder) => new HaproxyRouter('web', listen, folder), pidFile: 'haproxy.pid', processes: (pid) => [pid, ...childrenOf(pid)] });

describe('haproxy: adoption', () => {
  it('a router whose runtime API closes the connection with no answer is ended and replaced, not adopted', async () => {
    const dir = join(root, 'mute');
    const first = new HaproxyRouter('web', { host: '127.0.0.1', port: 0, protocol: 'http' }, dir);
    after(() => first.stop());
    const { port } = await first.start();
    const pid = first.pid!;
    after(() => {
      if (alive(pid)) process.kill(-pid, 'SIGKILL');
    });
    // Its socket now leads to one that reads each command and closes the connection unanswered.
    const mute = createServer((conn) => {
      conn.resume();
      conn.on('end', () => conn.end());
    });
    await new Promise<void>((resolve) => mute.listen(join(dir, 'mute.sock'), resolve));
    after(() => mute.close());
    rmSync(join(dir, 'admin.sock'));
    symlinkSync(join(dir, 'mute.sock'), join(dir, 'admin.sock'));
    const second = new HaproxyRouter('web', { host: '127.0.0.1', port, protocol: 'http' }, dir);
    after(() => second.stop());
    assert.equal((await second.start()).port, port);
    assert.notEqual(second.pid, pid, 'a new HAProxy');
    assert.ok(await waitForExit(pid, 5_000), 'the mute one is gone');
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 503, 'the new one serves');
  });
});

describe('haproxy: counts over a reload', () => {
  it('the next control plane adopts the counts a reload carried over', async () => {
    const dir = join(root, 'carried');
    const a = await backend('a');
    const first = new HaproxyRouter('web', { host: '127.0.0.1', port: 0, protocol: 'http' }, dir);
    after(() => first.stop());
    await first.start();
    await first.route({ id: 'a', host: '127.0.0.1', port: a.port });
    const port = await freePort();
    await first.relisten({ host: '127.0.0.1', port, protocol: 'http' });
    for (let i = 0; i < 4; i++) assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'a');
    const counted = await first.stats();
    await first.close();
    const second = new HaproxyRouter('web', { host: '127.0.0.1', port, protocol: 'http' }, dir);
    after(() => second.stop());
    await second.start();
    assert.equal(second.pid, first.pid, 'adopted');
    const adopted = await second.stats();
    assert.equal(adopted.requests, counted.requests);
    assert.deepEqual(adopted.targets.map((t) => [t.id, t.requests, t.responses['2xx']]), counted.targets.map((t) => [t.id, t.requests, t.responses['2xx']]));
  });

  it('counts pending on a reload are not added while the worker it was asked of still answers (the reload failed)', async () => {
    const dir = join(root, 'pending');
    const a = await backend('a');
    const router = new HaproxyRouter('web', { host: '127.0.0.1', port: 0, protocol: 'http' }, dir);
    after(() => router.stop());
    const { port } = await router.start();
    await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
    for (let i = 0; i < 2; i++) assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'a');
    const [worker] = childrenOf(router.pid!);
    const lots = { requests: 1000, retried: 0, targets: {} };
    writeFileSync(join(dir, 'carried.json'), JSON.stringify({ base: { requests: 10, retried: 0, targets: {} }, pending: { worker, counted: lots } }));
    assert.equal((await router.stats()).requests, 12, 'the base only: the worker asked to reload counts itself');
    writeFileSync(join(dir, 'carried.json'), JSON.stringify({ base: { requests: 10, retried: 0, targets: {} }, pending: { worker: worker! + 100_000, counted: lots } }));
    assert.equal((await router.stats()).requests, 1012, 'another worker was asked: what it counted is carried');
  });
});

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

describe('haproxy: the access log under load', () => {
  it('keeps a random sample of the requests that went well, counted as what they stand for, and every failure', async () => {
    // Sampled at any rate (the default samples above 1,000 requests a second), 1 in 4.
    const folder = join(root, 'sampled');
    const router = new HaproxyRouter('web', { host: '127.0.0.1', port: 0, protocol: 'http' }, folder, { accessLog: { everyBelow: 0, oneIn: 4 } });
    after(() => router.stop());
    const { port } = await router.start();
    const a = await backend('a');
    await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
    const url = `http://127.0.0.1:${port}/`;
    for (let i = 0; i < 50; i++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => fetch(url).then(async (r) => `${r.status} ${await r.text()}`)));
      assert.deepEqual(new Set(answers), new Set(['200 a']));
    }
    // POSTs cut mid-flight: never sent again, each a failure at the router (a 502, or a 503 once
    // the cut marked a down). Each on a connection of its own: HAProxy closes a kept-alive
    // client connection without an answer (and without a log line) when a request after its
    // first fails this way, so that the client may retry it as after any keep-alive close.
    const cut = await Promise.all(Array.from({ length: 40 }, (_, i) => requestOnce('http', port, [], { method: 'POST', headers: { 'x-cut': `sampled-${i}` }, body: 'x' }).then((r) => r.status)));
    assert.ok(cut.every((status) => status === 502 || status === 503), `statuses ${[...new Set(cut)].join(', ')}`);
    let stats = await router.stats();
    await waitFor('the 40 failures counted', async () => (stats = await router.stats()).failed >= 40);
    assert.equal(stats.failed, 40, 'each failure once, sampled or not');
    const latency = stats.targets.find((t) => t.id === 'a')!.latency.counts.reduce((x, y) => x + y, 0);
    // 400 answers, each in the sample with a chance of 1 in 4 (standard deviation of the estimate: 35).
    assert.equal(latency % 4, 0, 'each sampled answer counts as 4');
    assert.ok(latency >= 200 && latency <= 600, `the histogram estimates ${latency} answers of 400`);
    const lines = readFileSync(join(folder, 'access.log'), 'utf8').split('\n').filter((l) => l.includes('|'));
    assert.ok(lines.length < 250, `${lines.length} access lines for 440 requests: the unsampled ones that went well are not written`);
  });
});
