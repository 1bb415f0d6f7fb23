import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { get as httpGet, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { Agent, fetch, WebSocket } from 'undici';
import { RouterError } from '../../src/errors.js';
import type { ListenSpec } from '../../src/router/engine/engine.js';
import { quantileOf, type RouterControl, type RouterStats } from '../../src/router/router-control.js';
import { backend, selfSigned, tcpBackend, writeIn } from '../support/backends.js';
import { connects, freePort, getOnce, peerFingerprint, waitFor } from '../support/net.js';
import { tempDir } from '../support/temp.js';

/** Makes a router for the suite, not yet started; the suite stops each one it made. */
export type MakeRouter = (service: string, listen: ListenSpec) => RouterControl;

/**
 * The one suite every data plane passes: routing and draining with requests in flight,
 * retries, weights, stats, upgrades, TCP mode, TLS and bad input.
 */
export function routerSuite(name: string, make: MakeRouter): void {
  const started = async (listen: Partial<ListenSpec> = {}) => {
    const router = make('web', { host: '127.0.0.1', port: 0, protocol: 'http', ...listen });
    after(() => router.stop());
    const address = await router.start();
    return { router, url: `${listen.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`, port: address.port };
  };
  const text = async (url: string, init?: Parameters<typeof fetch>[1]) => {
    const res = await fetch(url, init);
    return { status: res.status, body: await res.text(), instance: res.headers.get('x-imago-instance') };
  };
  const inflightOf = async (router: RouterControl, id: string) => (await router.snapshot()).targets.find((t) => t.id === id)?.inflight ?? 0;

  describe(`router suite: ${name}`, () => {
    it('answers 503 naming the service when no instance is routed', async () => {
      const { url } = await started();
      const res = await text(url);
      assert.equal(res.status, 503);
      assert.match(res.body, /service 'web' has no healthy instance/);
    });

    it('spreads requests, keeps Host, appends X-Forwarded-For, streams bodies', async () => {
      const a = await backend('a');
      const b = await backend('b');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      await router.route({ id: 'b', host: '127.0.0.1', port: b.port });
      const get = () =>
        new Promise<string>((resolve, reject) => {
          httpGet(url, { headers: { host: 'shop.example', 'x-forwarded-for': '10.9.9.9' } }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve(body));
          }).on('error', reject);
        });
      const answers = await Promise.all(Array.from({ length: 20 }, get));
      assert.deepEqual(new Set(answers), new Set(['a', 'b']));
      assert.equal(a.seen[0]!.host, 'shop.example');
      assert.equal(a.seen[0]!.xff, '10.9.9.9, 127.0.0.1');
      assert.equal(a.seen[0]!.proto, 'http');
      const echoed = await text(`${url}/echo`, { method: 'POST', body: 'x'.repeat(100_000) });
      assert.match(echoed.body, /^[ab]:x{100000}$/);
      const snapshot = await router.snapshot();
      assert.deepEqual(snapshot.targets.map((t) => [t.id, t.routed]).sort(), [['a', true], ['b', true]]);
    });

    it('unroute stops new requests at once; drain resolves once the in-flight ones finished', async () => {
      const a = await backend('a');
      const b = await backend('b');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const slow = text(`${url}/slow`);
      await waitFor('the slow request in flight on a', async () => (await inflightOf(router, 'a')) === 1);
      await router.route({ id: 'b', host: '127.0.0.1', port: b.port });
      let drained: number | undefined;
      const draining = router.drain('a', 10_000).then((left) => (drained = left));
      await waitFor('a unrouted', async () => (await router.snapshot()).targets.find((t) => t.id === 'a')?.routed === false);
      for (let i = 0; i < 5; i++) assert.equal((await text(url)).body, 'b');
      assert.equal(drained, undefined, 'a request is still in flight');
      a.release();
      assert.equal((await slow).body, 'a slow done');
      assert.equal(await draining, 0);
      await router.forget('a');
      assert.deepEqual((await router.snapshot()).targets.map((t) => t.id), ['b']);
    });

    it('drain gives up at its timeout, saying how many requests were still in flight', async () => {
      const a = await backend('a');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const slow = text(`${url}/slow`).catch(() => undefined);
      await waitFor('the slow request in flight on a', async () => (await inflightOf(router, 'a')) === 1);
      assert.equal(await router.drain('a', 300), 1);
      a.release();
      await slow;
    });

    it('sends a request that never reached its instance (refused) to another one, whatever its method', async () => {
      const b = await backend('b');
      const { router, url } = await started();
      await router.route({ id: 'dead', host: '127.0.0.1', port: await freePort() });
      await router.route({ id: 'b', host: '127.0.0.1', port: b.port });
      const posts = await Promise.all(Array.from({ length: 6 }, () => text(`${url}/echo`, { method: 'POST', body: 'hi' })));
      assert.deepEqual(new Set(posts.map((p) => `${p.status} ${p.body}`)), new Set(['200 b:hi']));
      const stats = await router.stats();
      assert.equal(stats.failed, 0);
      assert.ok(stats.retried >= 1, `retried ${stats.retried}`);
    });

    it('a POST cut mid-flight is a 502 (it may have been done); with an Idempotency-Key, or a PUT or a GET, it is sent again', async () => {
      const a = await backend('a');
      const b = await backend('b');
      const cases: Array<[string, RequestInit, number]> = [
        ['POST', { method: 'POST', body: 'x' }, 502],
        ['POST with an Idempotency-Key', { method: 'POST', body: 'x', headers: { 'idempotency-key': 'k1' } }, 200],
        ['PUT', { method: 'PUT', body: 'x' }, 200],
        ['GET', { method: 'GET' }, 200],
      ];
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      await router.route({ id: 'b', host: '127.0.0.1', port: b.port });
      for (const [what, init, status] of cases) {
        const before = await router.stats();
        const res = await text(url, { method: init.method, body: init.body as string | undefined, headers: { ...(init.headers as Record<string, string>), 'x-cut': `${name}-${what}` } });
        assert.equal(res.status, status, what);
        if (status === 200) assert.match(res.body, /^[ab]$/, what);
        // A data plane may count a moment after answering (HAProxy's access log).
        if (status === 200) await waitFor(`${what}: counted as retried`, async () => (await router.stats()).retried > before.retried);
        else await waitFor(`${what}: counted as failed`, async () => (await router.stats()).failed > before.failed);
      }
    });

    it("passes a GET's body on, and answers `Expect: 100-continue`", async () => {
      const a = await backend('a');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const echo = (method: string, headers: Record<string, string>, body: string) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = httpRequest(`${url}/echo`, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
            let out = '';
            res.on('data', (c: Buffer) => (out += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: out }));
          });
          req.on('error', reject);
          if (headers.expect) req.on('continue', () => req.end(body));
          else req.end(body);
        });
      assert.deepEqual(await echo('GET', {}, 'a query in a body'), { status: 200, text: 'a:a query in a body' });
      const big = 'x'.repeat(4096);
      assert.deepEqual(await echo('POST', { expect: '100-continue' }, big), { status: 200, text: `a:${big}` });
    });

    it('passes 12 KiB of request headers on (big cookies, tokens)', async () => {
      const a = await backend('a');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const res = await text(url, { headers: { 'x-big': 'c'.repeat(12 * 1024) } });
      assert.deepEqual([res.status, res.body], [200, 'a']);
    });

    it('refuses to start on a port in use, saying so', async () => {
      const a = await backend('a');
      const router = make('web', { host: '127.0.0.1', port: a.port, protocol: 'http' });
      after(() => router.stop());
      await assert.rejects(router.start(), (error: unknown) => error instanceof RouterError && error.inUse && /failed to listen on 127\.0\.0\.1:\d+ for service 'web': the port is in use/.test(error.message));
    });

    it('zero failed requests under constant load (GET and POST) while the whole fleet is swapped', async () => {
      const olds = await Promise.all(['o1', 'o2', 'o3'].map(backend));
      const news = await Promise.all(['n1', 'n2', 'n3'].map(backend));
      const { router, url } = await started();
      for (const [i, o] of olds.entries()) await router.route({ id: `o${i + 1}`, host: '127.0.0.1', port: o.port });
      let stop = false;
      let ok = 0;
      const bad: string[] = [];
      const seen = new Set<string>();
      const client = async (n: number) => {
        while (!stop) {
          const res = await text(url, n % 2 === 0 ? { method: 'POST', body: 'p' } : undefined).catch((error: unknown) => ({ status: 0, body: String(error), instance: null }));
          if (res.status === 200) {
            ok++;
            seen.add(res.body);
          } else bad.push(`${res.status} ${res.body}`);
        }
      };
      const clients = Array.from({ length: 8 }, (_, n) => client(n));
      for (let i = 0; i < 3; i++) {
        await router.route({ id: `n${i + 1}`, host: '127.0.0.1', port: news[i]!.port });
        assert.equal(await router.drain(`o${i + 1}`, 10_000), 0);
        await router.forget(`o${i + 1}`);
        olds[i]!.kill();
      }
      const target = ok + 200;
      await waitFor('200 more answers from the new fleet', () => ok >= target, 20_000);
      stop = true;
      await Promise.all(clients);
      assert.deepEqual(bad, []);
      assert.ok(seen.has('n1') && seen.has('n3'), [...seen].join(','));
    });

    it('shares requests by release weight: 90/10 over 10,000 requests is 10% ± 1.5%', async () => {
      const a1 = await backend('a1');
      const a2 = await backend('a2');
      const b1 = await backend('b1');
      const { router, url } = await started();
      await router.route({ id: 'a1', host: '127.0.0.1', port: a1.port, release: 1 });
      await router.route({ id: 'a2', host: '127.0.0.1', port: a2.port, release: 1 });
      await router.route({ id: 'b1', host: '127.0.0.1', port: b1.port, release: 2 });
      await router.setWeights({ 1: 90, 2: 10 });
      assert.deepEqual((await router.snapshot()).weights, { 1: 90, 2: 10 });
      const counts = new Map<string, number>();
      let next = 0;
      const client = async () => {
        while (next < 10_000) {
          next++;
          const res = await text(url);
          counts.set(res.body, (counts.get(res.body) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
      const share = (counts.get('b1') ?? 0) / 10_000;
      assert.ok(Math.abs(share - 0.1) <= 0.015, `release 2 got ${(share * 100).toFixed(2)}% (${JSON.stringify(Object.fromEntries(counts))})`);
      assert.equal([...counts.keys()].sort().join(','), 'a1,a2,b1');
      // Back to equal: every target the same.
      await router.setWeights(undefined);
      const equal = await Promise.all(Array.from({ length: 30 }, () => text(url)));
      assert.equal(new Set(equal.map((r) => r.body)).size, 3);
    });

    it('counts per target: requests, status classes, bytes, a latency histogram', async () => {
      const a = await backend('a');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port, release: 7 });
      for (let i = 0; i < 20; i++) await text(`${url}/bytes/1000`);
      for (let i = 0; i < 5; i++) await text(`${url}/status/404`);
      for (let i = 0; i < 3; i++) await text(`${url}/status/503`);
      await text(`${url}/echo`, { method: 'POST', body: 'y'.repeat(5000) });
      const stats = await waitForStats(router, 'a', 29);
      const target = stats.targets.find((t) => t.id === 'a')!;
      assert.equal(target.release, 7);
      assert.equal(target.requests, 29);
      assert.deepEqual(target.responses, { '1xx': 0, '2xx': 21, '3xx': 0, '4xx': 5, '5xx': 3 });
      assert.ok(target.bytesOut >= 20_000, `bytes out ${target.bytesOut}`);
      assert.ok(target.bytesIn >= 5000, `bytes in ${target.bytesIn}`);
      assert.equal(target.latency.counts.reduce((x, y) => x + y, 0), 29);
      const p50 = quantileOf(target.latency, 0.5)!;
      assert.ok(p50 > 0 && p50 < 1000, `p50 ${p50} ms`);
      assert.ok(quantileOf(target.latency, 0.99)! >= p50);
    });

    it('passes upgrades through (a WebSocket); an open one stays open while its instance drains, until it is forgotten', async () => {
      const a = await backend('a');
      const b = await backend('b');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const ws = new WebSocket(url.replace('http', 'ws'));
      const messages: string[] = [];
      ws.addEventListener('message', (event) => messages.push(String(event.data)));
      const closed = new Promise<void>((resolve) => ws.addEventListener('close', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        ws.addEventListener('open', () => resolve());
        ws.addEventListener('error', () => reject(new Error('the WebSocket did not open')));
      });
      ws.send('one');
      await waitFor('the echo of one', () => messages.includes('a:one'));
      await waitFor('the tunnel counted in flight', async () => (await inflightOf(router, 'a')) === 1);
      await router.route({ id: 'b', host: '127.0.0.1', port: b.port });
      await router.unroute('a');
      ws.send('two');
      await waitFor('the echo of two, while a drains', () => messages.includes('a:two'));
      assert.equal((await text(url)).body, 'b');
      await router.forget('a');
      await closed;
      // A plain `Upgrade: echo` too, with the answer's first bytes.
      const echoed = await new Promise<string>((resolve, reject) => {
        const req = httpRequest(url, { headers: { connection: 'Upgrade', upgrade: 'echo' } });
        req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
          let got = head.toString();
          socket.on('data', (c: Buffer) => {
            got += c.toString();
            if (got.endsWith('ping')) {
              socket.destroy();
              resolve(got);
            }
          });
          socket.write('ping');
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(echoed, 'b>ping');
    });

    it('TCP mode: forwards connections, balances and drains by connection, sends a refused one elsewhere', async () => {
      const a = await tcpBackend('a');
      const b = await tcpBackend('b');
      const { router, port } = await started({ protocol: 'tcp' });
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const first = await tcpTalk(port);
      assert.equal(await first.say('hello'), 'a>hello');
      await waitFor('one connection in flight on a', async () => (await inflightOf(router, 'a')) === 1);
      await router.route({ id: 'b', host: '127.0.0.1', port: b.port });
      await router.unroute('a');
      const second = await tcpTalk(port);
      assert.equal(await second.say('x'), 'b>x');
      assert.equal(await first.say('again'), 'again', 'the open connection to a goes on while a drains');
      first.socket.destroy();
      await waitFor('a drained', async () => (await inflightOf(router, 'a')) === 0);
      second.socket.destroy();
      await router.forget('a');
      await router.route({ id: 'dead', host: '127.0.0.1', port: await freePort() });
      for (let i = 0; i < 4; i++) {
        const c = await tcpTalk(port);
        assert.equal(await c.say('r'), 'b>r');
        c.socket.destroy();
      }
    });

    it('terminates TLS with the given certificate and key', async () => {
      const dir = await tempDir();
      const pair = selfSigned(dir);
      const a = await backend('a');
      const { router, url } = await started({ tls: { cert: pair.cert, key: pair.key } });
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const dispatcher = new Agent({ connect: { ca: pair.certPem } });
      after(() => dispatcher.close());
      const res = await fetch(url, { dispatcher });
      assert.equal(await res.text(), 'a');
      assert.equal(a.seen.at(-1)!.proto, 'https');
    });

    it('moves to a new address: the request in flight finishes, the routes stay, the old address stops taking connections', async () => {
      const a = await backend('a');
      const { router, url, port: oldPort } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const slow = text(`${url}/slow`);
      await waitFor('the slow request in flight on a', async () => (await inflightOf(router, 'a')) === 1);
      const port = await freePort();
      assert.deepEqual(await router.relisten({ host: '127.0.0.1', port, protocol: 'http' }), { host: '127.0.0.1', port });
      assert.equal((await text(`http://127.0.0.1:${port}/`)).body, 'a');
      a.release();
      assert.equal((await slow).body, 'a slow done', 'the request in flight at the old address finished');
      await waitFor('the old address to stop taking connections', async () => !(await connects(oldPort)));
      assert.deepEqual((await router.snapshot()).targets.map((t) => [t.id, t.routed]), [['a', true]]);
    });

    it('keeps its counts across a move to a new address', async () => {
      const a = await backend('a');
      const { router, url } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      for (let i = 0; i < 5; i++) assert.equal((await text(`${url}/`)).body, 'a');
      const before = await router.stats();
      const beforeA = before.targets.find((t) => t.id === 'a')!;
      assert.equal(beforeA.requests, 5);
      const port = await freePort();
      await router.relisten({ host: '127.0.0.1', port, protocol: 'http' });
      for (let i = 0; i < 3; i++) assert.equal((await text(`http://127.0.0.1:${port}/`)).body, 'a');
      const after = await router.stats();
      const afterA = after.targets.find((t) => t.id === 'a')!;
      assert.equal(after.requests, before.requests + 3, 'the router counts on from where it was');
      assert.equal(afterA.requests, 8);
      assert.equal(afterA.responses['2xx'], beforeA.responses['2xx'] + 3);
      assert.ok(afterA.bytesOut > beforeA.bytesOut, 'bytes count on');
      // And again: what a second move carries adds to what the first did.
      const third = await freePort();
      await router.relisten({ host: '127.0.0.1', port: third, protocol: 'http' });
      for (let i = 0; i < 2; i++) assert.equal((await text(`http://127.0.0.1:${third}/`)).body, 'a');
      const last = await router.stats();
      assert.equal(last.requests, before.requests + 5);
      assert.equal(last.targets.find((t) => t.id === 'a')!.requests, 10);
    });

    it('renews its TLS pair, then turns TLS off, at the same address, refusing no connection meanwhile', async () => {
      const dir = await tempDir();
      const one = selfSigned(dir, 'one');
      const two = selfSigned(dir, 'two');
      const a = await backend('a');
      const { router, port } = await started({ tls: { cert: one.cert, key: one.key } });
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      // A new connection for every request, as clients without keep-alive make: each one must be taken.
      let stop = false;
      let ok = 0;
      const bad: string[] = [];
      let scheme: 'https' | 'http' = 'https';
      // While TLS goes off, a request sent with it may meet plain HTTP: the client's mistake, not a
      // refusal. `phase` is odd while it goes off; a request that overlapped that is excused.
      let phase = 0;
      const client = async () => {
        while (!stop) {
          const from = phase;
          const answer = await fetchOnce(scheme, port, [one.certPem, two.certPem]).catch((error: unknown) => `error ${String(error)}`);
          if (answer === 'a') ok++;
          else if (from === phase && from % 2 === 0) bad.push(answer);
        }
      };
      const clients = Array.from({ length: 4 }, client);
      await waitFor('requests flowing', () => ok >= 20);
      await router.relisten({ host: '127.0.0.1', port, protocol: 'http', tls: { cert: two.cert, key: two.key } });
      await waitFor('a new connection gets the new certificate', async () => (await peerFingerprint(port)) === new X509Certificate(two.certPem).fingerprint256);
      const renewed = ok;
      await waitFor('requests flowing after the renewal', () => ok >= renewed + 20);
      phase++;
      await router.relisten({ host: '127.0.0.1', port, protocol: 'http' });
      scheme = 'http';
      phase++;
      await waitFor('plain HTTP answered at the same address', async () => (await fetchOnce('http', port, []).catch(() => '')) === 'a');
      const plain = ok;
      await waitFor('requests flowing without TLS', () => ok >= plain + 20);
      stop = true;
      await Promise.all(clients);
      assert.deepEqual(bad, []);
      assert.equal(a.seen.at(-1)!.proto, 'http');
    });

    it('refuses a relisten to an address in use, to bad TLS files, or to another protocol, and serves on as it was', async () => {
      const dir = await tempDir();
      const one = selfSigned(dir, 'one');
      const two = selfSigned(dir, 'two');
      const a = await backend('a');
      const { router, url, port } = await started();
      await router.route({ id: 'a', host: '127.0.0.1', port: a.port });
      const squatter = await started();
      await assert.rejects(router.relisten({ host: '127.0.0.1', port: squatter.port, protocol: 'http' }), (error: unknown) => error instanceof RouterError && error.inUse && /the port is in use/.test(error.message));
      await assert.rejects(router.relisten({ host: '127.0.0.1', port, protocol: 'http', tls: { cert: one.cert, key: two.key } }), (error: unknown) => error instanceof RouterError && error.badInput && /does not match/.test(error.message));
      await assert.rejects(router.relisten({ host: '127.0.0.1', port, protocol: 'tcp' }), (error: unknown) => error instanceof RouterError && error.badInput && /serves http, and cannot be changed to tcp/.test(error.message));
      assert.equal((await text(url)).body, 'a', 'it serves on where it did');
    });

    it('refuses a certificate that does not parse, a key that does not match it, a key it cannot read: saying which', async () => {
      const dir = await tempDir();
      const one = selfSigned(dir, 'one');
      const two = selfSigned(dir, 'two');
      const junk = writeIn(dir, 'junk.crt', 'not a certificate\n');
      const cases: Array<[string, { cert: string; key: string }, RegExp]> = [
        ['junk', { cert: junk, key: one.key }, /junk\.crt/],
        ['mismatch', { cert: one.cert, key: two.key }, /two\.key' does not match the certificate in '.*one\.crt'/],
        ['missing', { cert: one.cert, key: `${dir}/none.key` }, /none\.key/],
      ];
      for (const [what, tls, pattern] of cases) {
        const router = make('web', { host: '127.0.0.1', port: 0, protocol: 'http', tls });
        after(() => router.stop());
        await assert.rejects(router.start(), (error: unknown) => {
          assert.ok(error instanceof RouterError && error.badInput, `${what}: ${String(error)}`);
          assert.match(error.message, pattern, what);
          return true;
        });
      }
    });
  });
}

/** One GET on a connection of its own: the body when it is a 200, else the status and body. */
async function fetchOnce(scheme: 'http' | 'https', port: number, ca: string[]): Promise<string> {
  const { status, body } = await getOnce(scheme, port, ca);
  return status === 200 ? body : `${status} ${body}`;
}

/** Stats once `id` counted `requests` (a data plane may count a moment after answering). */
async function waitForStats(router: RouterControl, id: string, requests: number): Promise<RouterStats> {
  let stats = await router.stats();
  await waitFor(`${requests} requests counted on ${id}`, async () => {
    stats = await router.stats();
    const t = stats.targets.find((x) => x.id === id);
    return t !== undefined && t.requests >= requests && t.latency.counts.reduce((x, y) => x + y, 0) >= requests;
  });
  return stats;
}

/** A TCP connection to the router: `say` writes and resolves with what came back since the last one (greeting and echo). */
async function tcpTalk(port: number): Promise<{ socket: Socket; say: (text: string) => Promise<string> }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffer = '';
  socket.on('data', (c: Buffer) => (buffer += c.toString()));
  const say = async (text: string) => {
    socket.write(text);
    await waitFor(`the echo of '${text}'`, () => buffer.endsWith(text));
    const out = buffer;
    buffer = '';
    return out;
  };
  return { socket, say };
}



