import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { ImagoError } from '../../src/errors.js';
import { loopbackAddress } from '../../src/health/loopback.js';
import { NO_EXEC, probeOnce, type HealthCheck, type RunCommand } from '../../src/health/probe.js';
import { freePort } from '../support/net.js';
import { httpApp, statusApp, tcpListener } from './apps.js';

const http = { kind: 'http', path: '/healthz' } as const;
const tcp = { kind: 'tcp' } as const;
const local = (port: number) => ({ host: '127.0.0.1', port });

describe('probeOnce: http', () => {
  it('passes on 2xx and 3xx, with the status and time in the detail', async () => {
    const app = await httpApp((n, req, res) => (req.url === '/moved' ? res.writeHead(302, { location: '/elsewhere' }).end() : res.end('ok')));
    const before = Date.now();
    const ok = await probeOnce(http, local(app.port), 1000);
    assert.equal(ok.ok, true);
    assert.match(ok.detail, /^GET \/healthz → 200 in \d+ms$/);
    assert.ok(ok.at >= before && ok.at <= Date.now(), 'at is the time the probe started');
    assert.ok(ok.ms >= 0 && ok.ms < 1000);
    const moved = await probeOnce({ kind: 'http', path: 'moved' }, local(app.port), 1000);
    assert.equal(moved.ok, true);
    assert.match(moved.detail, /^GET \/moved → 302 in \d+ms$/);
    assert.equal(app.hits(), 2, 'redirects are not followed');
  });

  it('fails on 4xx and 5xx', async () => {
    for (const status of [404, 500, 503]) {
      const app = await statusApp(status);
      const result = await probeOnce(http, local(app.port), 1000);
      assert.equal(result.ok, false);
      assert.match(result.detail, new RegExp(`^GET /healthz → ${status} in \\d+ms$`));
    }
  });

  it('fails with "connection refused" when nothing listens', async () => {
    const result = await probeOnce(http, local(await freePort()), 1000);
    assert.deepEqual({ ok: result.ok, detail: result.detail }, { ok: false, detail: 'GET /healthz → connection refused' });
  });

  it('fails with "timed out" when the app hangs, and closes the connection', async () => {
    let closed!: Promise<void>;
    const app = await httpApp((_n, req) => {
      closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    });
    const result = await probeOnce(http, local(app.port), 50);
    assert.deepEqual({ ok: result.ok, detail: result.detail }, { ok: false, detail: 'GET /healthz → timed out after 50ms' });
    assert.ok(result.ms >= 45, `took ${result.ms}ms`);
    await closed; // the app sees its connection go: nothing lingers after a timeout
  });

  it('accepts localhost as 127.0.0.1', async () => {
    const app = await statusApp(204);
    const result = await probeOnce(http, { host: 'localhost', port: app.port }, 1000);
    assert.equal(result.ok, true, result.detail);
  });

  it('reaches ::1 when the machine has it', async (t) => {
    const server = createServer((_req, res) => res.end());
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(0, '::1', () => resolve(true));
    });
    if (!listening) return t.skip('no IPv6 loopback on this machine');
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const result = await probeOnce(http, { host: '[::1]', port: (server.address() as AddressInfo).port }, 1000);
    assert.equal(result.ok, true, result.detail);
  });

  it('stops at once when its signal aborts', async () => {
    const app = await httpApp(() => undefined);
    const controller = new AbortController();
    const pending = probeOnce(http, local(app.port), 5000, { signal: controller.signal });
    controller.abort();
    const result = await pending;
    assert.deepEqual({ ok: result.ok, detail: result.detail }, { ok: false, detail: 'GET /healthz → aborted' });
  });
});

describe('probeOnce: tcp', () => {
  it('passes when a connection is accepted', async () => {
    const listener = await tcpListener();
    const result = await probeOnce(tcp, local(listener.port), 1000);
    assert.equal(result.ok, true);
    assert.match(result.detail, new RegExp(`^TCP 127\\.0\\.0\\.1:${listener.port} → connected in \\d+ms$`));
    assert.equal(listener.hits(), 1);
  });

  it('fails when the connection is accepted and closed at once (a port proxy with no app behind it)', async () => {
    const listener = await tcpListener({ hangUp: true });
    const result = await probeOnce(tcp, local(listener.port), 1000);
    assert.equal(result.ok, false);
    assert.match(result.detail, /→ accepted, then closed at once/);
  });

  it('fails with "connection refused" when nothing listens', async () => {
    const port = await freePort();
    const result = await probeOnce(tcp, local(port), 1000);
    assert.deepEqual({ ok: result.ok, detail: result.detail }, { ok: false, detail: `TCP 127.0.0.1:${port} → connection refused` });
  });
});

describe('probeOnce: command', () => {
  const check: HealthCheck = { kind: 'command', command: ['pg_isready', '-q'] };

  it('fails without the provider exec, saying so', async () => {
    const result = await probeOnce(check, local(5432), 1000);
    assert.deepEqual({ ok: result.ok, detail: result.detail }, { ok: false, detail: NO_EXEC });
  });

  it('runs the command through the exec passed in: exit 0 passes, anything else fails with the output', async () => {
    const seen: Array<string | string[]> = [];
    const exec = (exitCode: number, output: string): RunCommand => async (command) => {
      seen.push(command);
      return { exitCode, output };
    };
    const ok = await probeOnce(check, local(5432), 1000, { runCommand: exec(0, 'accepting\n') });
    assert.equal(ok.ok, true);
    assert.match(ok.detail, /^command 'pg_isready -q' → exit 0 in \d+ms$/);
    const bad = await probeOnce({ kind: 'command', command: 'check-db' }, local(5432), 1000, { runCommand: exec(2, 'no response\n  from server\n') });
    assert.equal(bad.ok, false);
    assert.match(bad.detail, /^command 'check-db' → exit 2: no response from server in \d+ms$/);
    assert.deepEqual(seen, [['pg_isready', '-q'], 'check-db']);
  });

  it('times out a command that does not finish, and reports one that throws', async () => {
    let killed = false;
    // a command that runs for 10s unless the probe's signal kills it (as a provider's exec would)
    const sleeper: RunCommand = (_command, signal) =>
      new Promise((_resolve, reject) => {
        const running = setTimeout(() => reject(new Error('should have been killed')), 10_000);
        signal.addEventListener('abort', () => {
          killed = true;
          clearTimeout(running);
          reject(new Error('killed'));
        });
      });
    const slow = await probeOnce(check, local(5432), 30, { runCommand: sleeper });
    assert.deepEqual({ ok: slow.ok, detail: slow.detail }, { ok: false, detail: "command 'pg_isready -q' → timed out after 30ms" });
    assert.equal(killed, true, 'the exec is told to stop the command');
    const broken = await probeOnce(check, local(5432), 1000, { runCommand: async () => Promise.reject(new Error('instance is gone')) });
    assert.deepEqual({ ok: broken.ok, detail: broken.detail }, { ok: false, detail: "command 'pg_isready -q' → instance is gone" });
  });
});

describe('probeOnce: loopback only', () => {
  it('knows loopback when it sees it', () => {
    assert.equal(loopbackAddress('127.0.0.1'), '127.0.0.1');
    assert.equal(loopbackAddress('127.200.3.4'), '127.200.3.4');
    assert.equal(loopbackAddress('::1'), '::1');
    assert.equal(loopbackAddress('[::1]'), '::1');
    assert.equal(loopbackAddress('0:0:0:0:0:0:0:1'), '0:0:0:0:0:0:0:1');
    assert.equal(loopbackAddress('LOCALHOST'), '127.0.0.1');
  });

  it('refuses any other address with an ImagoError, before any connection attempt', async () => {
    const attempts: string[] = [];
    const onNet = (): void => void attempts.push('net.client.socket');
    const onUndici = (): void => void attempts.push('undici:client:beforeConnect');
    subscribe('net.client.socket', onNet);
    subscribe('undici:client:beforeConnect', onUndici);
    try {
      const hosts = ['10.0.0.1', '192.0.2.1', '0.0.0.0', '128.0.0.1', '169.254.169.254', '::', '::2', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', ''];
      for (const host of hosts) {
        for (const check of [http, tcp, { kind: 'command', command: 'true' } as const]) {
          await assert.rejects(probeOnce(check, { host, port: 80 }, 1000, { runCommand: async () => ({ exitCode: 0, output: '' }) }), (error: unknown) => {
            assert.ok(error instanceof ImagoError, `${host}: ${String(error)}`);
            assert.match(error.message, /^refusing to probe '.*': health checks only reach loopback addresses/);
            return true;
          });
        }
      }
      assert.equal(attempts.length, 0, attempts.join(', '));
      // and a loopback probe does show up on those channels, so the assertion above means something
      await probeOnce(tcp, local(await freePort()), 1000);
      assert.ok(attempts.includes('net.client.socket'));
    } finally {
      unsubscribe('net.client.socket', onNet);
      unsubscribe('undici:client:beforeConnect', onUndici);
    }
  });

  it('refuses a port that is not a port', async () => {
    for (const port of [0, -1, 65_536, 1.5, Number.NaN]) {
      await assert.rejects(probeOnce(tcp, { host: '127.0.0.1', port }, 1000), /health probe port: expected an integer from 1 to 65535, got/);
    }
  });
});
