import assert from 'node:assert/strict';
import { createServer, get as httpGet, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { ServiceRouter } from '../../src/router/service-router.js';
import { freePort } from '../support/net.js';

/** A backend answering with its name; `/slow` waits until released, `/echo` returns the body. */
async function backend(name: string): Promise<{ server: Server; port: number; release: () => void; seen: Array<Record<string, unknown>> }> {
  const waiting: Array<() => void> = [];
  const seen: Array<Record<string, unknown>> = [];
  const server = createServer((req, res) => {
    seen.push({ host: req.headers.host, xff: req.headers['x-forwarded-for'], path: req.url });
    if (req.url === '/slow') {
      waiting.push(() => res.end(`${name} slow done`));
      return;
    }
    if (req.url === '/cut' && name === 'cutter') {
      // Reads the request, then hangs up without an answer: an instance dying mid-request.
      req.resume();
      req.on('end', () => req.socket.destroy());
      return;
    }
    if (req.url === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`${name}:${Buffer.concat(chunks).toString()}`));
      return;
    }
    res.end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return { server, port: (server.address() as AddressInfo).port, release: () => waiting.splice(0).forEach((w) => w()), seen };
}

/** Resolves once `id` has nothing in flight (at once when it has nothing now). */
function whenIdle(r: ServiceRouter, id: string): Promise<void> {
  return new Promise((resolve) => {
    if (r.inflight(id) === 0) return resolve();
    const off = r.onIdle((idle) => {
      if (idle !== id) return;
      off();
      resolve();
    });
  });
}

async function router(): Promise<{ router: ServiceRouter; url: string }> {
  const r = new ServiceRouter('web', { host: '127.0.0.1', port: 0 });
  const { port } = await r.start();
  after(() => r.close());
  return { router: r, url: `http://127.0.0.1:${port}` };
}

describe('service router', () => {
  it('answers 503 with a reason when no instance is routed', async () => {
    const { url } = await router();
    const res = await fetch(url);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { error: "service 'web' has no healthy instance" });
  });

  it('spreads requests, keeps Host, appends X-Forwarded-For, streams bodies', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { router: r, url } = await router();
    r.route({ id: 'a', host: '127.0.0.1', port: a.port });
    r.route({ id: 'b', host: '127.0.0.1', port: b.port });
    // fetch may not set Host: node:http may.
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
    const echoed = await fetch(`${url}/echo`, { method: 'POST', body: 'x'.repeat(100_000) }).then((res) => res.text());
    assert.match(echoed, /^[ab]:x{100000}$/);
  });

  it('unrouting stops new requests at once while the in-flight ones finish, and says when the last one did', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const { router: r, url } = await router();
    r.route({ id: 'a', host: '127.0.0.1', port: a.port });
    const slow = fetch(`${url}/slow`).then((res) => res.text());
    while (r.inflight('a') === 0) await new Promise((resolve) => setImmediate(resolve));
    r.route({ id: 'b', host: '127.0.0.1', port: b.port });
    r.unroute('a');
    assert.equal(await fetch(url).then((res) => res.text()), 'b');
    let idle = false;
    const drained = whenIdle(r, 'a').then(() => (idle = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(idle, false, 'a request is still in flight');
    a.release();
    assert.equal(await slow, 'a slow done');
    await drained;
    r.forget('a');
    assert.deepEqual(r.routed(), ['b']);
  });

  it('sends a request that never reached its instance (refused) to another one, whatever its method', async () => {
    const b = await backend('b');
    const { router: r, url } = await router();
    r.route({ id: 'dead', host: '127.0.0.1', port: await freePort() });
    r.route({ id: 'b', host: '127.0.0.1', port: b.port });
    const posts = await Promise.all(Array.from({ length: 6 }, () => fetch(`${url}/echo`, { method: 'POST', body: 'hi' }).then((res) => res.text())));
    assert.deepEqual(new Set(posts), new Set(['b:hi']));
    assert.equal(r.stats().failed, 0);
    assert.ok(r.stats().retried >= 1);
  });

  it('a POST cut mid-flight is a 502 (it may have been done); with an Idempotency-Key, or a PUT or a GET, it goes to another instance', async () => {
    const cutter = await backend('cutter');
    const b = await backend('b');
    const cases: Array<[string, RequestInit, number]> = [
      ['POST', { method: 'POST', body: 'x' }, 502],
      ['POST with an Idempotency-Key', { method: 'POST', body: 'x', headers: { 'idempotency-key': 'k1' } }, 200],
      ['PUT', { method: 'PUT', body: 'x' }, 200],
      ['GET', { method: 'GET' }, 200],
    ];
    for (const [what, init, status] of cases) {
      const { router: r, url } = await router();
      r.route({ id: 'cutter', host: '127.0.0.1', port: cutter.port }); // first of two equals: picked first
      r.route({ id: 'b', host: '127.0.0.1', port: b.port });
      const res = await fetch(`${url}/cut`, init);
      assert.equal(res.status, status, what);
      if (status === 200) assert.equal(await res.text(), 'b', what);
      assert.deepEqual([r.stats().retried, r.stats().failed], status === 200 ? [1, 0] : [0, 1], what);
    }
  });

  it('retries an idempotent request on another instance when one refuses connections', async () => {
    const b = await backend('b');
    const { router: r, url } = await router();
    r.route({ id: 'dead', host: '127.0.0.1', port: await freePort() });
    r.route({ id: 'b', host: '127.0.0.1', port: b.port });
    const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(url).then((res) => res.text())));
    assert.deepEqual(new Set(answers), new Set(['b']));
    assert.equal(r.stats().failed, 0);
  });

  it('passes a GET\'s body on, and answers `Expect: 100-continue` itself', async () => {
    const a = await backend('a');
    const { router: r, url } = await router();
    r.route({ id: 'a', host: '127.0.0.1', port: a.port });
    const echo = (method: string, headers: Record<string, string>, body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = httpRequest(`${url}/echo`, { method, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        if (headers.expect) req.on('continue', () => req.end(body));
        else req.end(body);
      });
    assert.deepEqual(await echo('GET', {}, 'a query in a body'), { status: 200, text: 'a:a query in a body' });
    const big = 'x'.repeat(4096);
    assert.deepEqual(await echo('POST', { expect: '100-continue' }, big), { status: 200, text: `a:${big}` });
  });

  it('refuses to start on a port in use, saying so', async () => {
    const a = await backend('a');
    const r = new ServiceRouter('web', { host: '127.0.0.1', port: a.port });
    await assert.rejects(r.start(), /failed to listen on 127\.0\.0\.1:\d+ for service 'web': the port is in use/);
  });

  it('zero failed requests under constant load while the whole fleet is swapped', async () => {
    const olds = await Promise.all(['o1', 'o2', 'o3'].map(backend));
    const news = await Promise.all(['n1', 'n2', 'n3'].map(backend));
    const { router: r, url } = await router();
    olds.forEach((o, i) => r.route({ id: `o${i + 1}`, host: '127.0.0.1', port: o.port }));
    let stop = false;
    let ok = 0;
    let bad = 0;
    const seen = new Set<string>();
    const client = async () => {
      while (!stop) {
        const res = await fetch(url).catch(() => undefined);
        if (res?.status === 200) {
          ok++;
          seen.add(await res.text());
        } else bad++;
      }
    };
    const clients = Array.from({ length: 8 }, client);
    for (let i = 0; i < 3; i++) {
      r.route({ id: `n${i + 1}`, host: '127.0.0.1', port: news[i]!.port });
      r.unroute(`o${i + 1}`);
      await whenIdle(r, `o${i + 1}`);
      r.forget(`o${i + 1}`);
      olds[i]!.server.closeAllConnections();
      olds[i]!.server.close();
    }
    const target = ok + 200;
    while (ok < target) await new Promise((resolve) => setTimeout(resolve, 5));
    stop = true;
    await Promise.all(clients);
    assert.equal(bad, 0);
    assert.ok(seen.has('n1') && seen.has('n3'));
  });
});
