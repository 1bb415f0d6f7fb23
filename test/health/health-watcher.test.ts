import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, it } from 'node:test';
import type { ServiceHealth } from '../../src/config/types.js';
import { ImagoError } from '../../src/errors.js';
import { HealthWatcher, TRANSCRIPT_SIZE, waitForVerdict, type HealthStatus } from '../../src/health/health-gate.js';
import { FakeClock } from '../../src/providers/fake/fake-clock.js';
import type { ProbeResult } from '../../src/health/probe.js';
import { freePort } from '../support/net.js';
import { httpApp, nextProbes, statusApp, tcpListener } from './apps.js';

const health = (over: Partial<ServiceHealth> = {}): ServiceHealth => ({
  check: { kind: 'http', path: '/healthz' },
  interval: 10,
  timeout: 500,
  startPeriod: 0,
  startInterval: 10,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  ...over,
});

/** A watcher on 127.0.0.1:port, stopped after the test; the status changes it reported. */
function watch(t: { after: (fn: () => void) => void }, port: number, over: Partial<ServiceHealth> = {}, startedAt?: number) {
  const watcher = new HealthWatcher({ health: health(over), address: { host: '127.0.0.1', port }, startedAt });
  const changes: HealthStatus[] = [];
  watcher.onChange((status) => changes.push(status));
  t.after(() => watcher.stop());
  return { watcher, changes };
}

describe('HealthWatcher', () => {
  it('passes an app that becomes healthy after a few requests, and keeps the transcript', async (t) => {
    const app = await httpApp((n, _req, res) => res.writeHead(n <= 3 ? 503 : 200).end());
    const { watcher, changes } = watch(t, app.port, { unhealthyThreshold: 5 });
    assert.equal(watcher.status, 'starting');
    assert.equal(await waitForVerdict(watcher, 3000), 'healthy');
    assert.deepEqual(changes, ['healthy']);
    assert.equal(app.hits(), 5, 'three 503s, then healthyThreshold (2) passes: the verdict comes on the 5th');
    const transcript = watcher.transcript;
    assert.deepEqual(
      transcript.map((r) => [r.ok, r.detail.replace(/ in \d+ms$/, '')]),
      [...Array(3).fill([false, 'GET /healthz → 503']), ...Array(2).fill([true, 'GET /healthz → 200'])],
    );
    for (const [i, r] of transcript.entries()) {
      assert.ok(r.ms >= 0);
      if (i > 0) assert.ok(r.at >= transcript[i - 1]!.at + transcript[i - 1]!.ms + 10 - 2, 'the next probe waits an interval after the previous one ends');
    }
    assert.deepEqual(watcher.current, { status: 'healthy', passes: 2, failures: 0 });
  });

  it('fails an app that answers 500', async (t) => {
    const app = await statusApp(500);
    const { watcher, changes } = watch(t, app.port);
    assert.equal(await waitForVerdict(watcher, 3000), 'unhealthy');
    assert.deepEqual(changes, ['unhealthy']);
    assert.equal(watcher.transcript.length, 3);
    assert.ok(watcher.transcript.every((r) => !r.ok && /^GET \/healthz → 500 in \d+ms$/.test(r.detail)));
  });

  it('fails an app that hangs, each probe timing out', async (t) => {
    const app = await httpApp(() => undefined);
    const { watcher } = watch(t, app.port, { timeout: 30, unhealthyThreshold: 2 });
    assert.equal(await waitForVerdict(watcher, 3000), 'unhealthy');
    assert.deepEqual(watcher.transcript.map((r) => r.detail), Array(2).fill('GET /healthz → timed out after 30ms'));
  });

  it('fails when the connection is refused, over http and tcp', async (t) => {
    const port = await freePort();
    const { watcher } = watch(t, port);
    const tcpWatch = watch(t, port, { check: { kind: 'tcp' } });
    assert.equal(await waitForVerdict(watcher, 3000), 'unhealthy');
    assert.equal(await waitForVerdict(tcpWatch.watcher, 3000), 'unhealthy');
    assert.equal(watcher.transcript.at(-1)?.detail, 'GET /healthz → connection refused');
    assert.equal(tcpWatch.watcher.transcript.at(-1)?.detail, `TCP 127.0.0.1:${port} → connection refused`);
  });

  it('passes a tcp check on a listener', async (t) => {
    const listener = await tcpListener();
    const { watcher } = watch(t, listener.port, { check: { kind: 'tcp' } });
    assert.equal(await waitForVerdict(watcher, 3000), 'healthy');
    assert.equal(listener.hits(), 2);
  });

  it('does not count failures inside the start period', async (t) => {
    const app = await statusApp(500);
    const startedAt = Date.now();
    const { watcher, changes } = watch(t, app.port, { startPeriod: 150, unhealthyThreshold: 2 }, startedAt);
    assert.equal(await waitForVerdict(watcher, 3000), 'unhealthy');
    assert.deepEqual(changes, ['unhealthy']);
    const transcript = watcher.transcript;
    const inside = transcript.filter((r) => r.at < startedAt + 150);
    assert.ok(inside.length >= 3, `${inside.length} failures inside the start period were probed`);
    assert.ok(transcript.slice(-2).every((r) => r.at >= startedAt + 150), 'the verdict rests on the 2 failures after it');
    assert.equal(transcript.length, inside.length + 2);
  });

  it('lets an app become healthy while it boots within its start period', async (t) => {
    const app = await httpApp((n, _req, res) => res.writeHead(n <= 5 ? 500 : 200).end());
    const { watcher, changes } = watch(t, app.port, { startPeriod: 10_000, healthyThreshold: 1, unhealthyThreshold: 1 });
    assert.equal(await waitForVerdict(watcher, 3000), 'healthy');
    assert.deepEqual(changes, ['healthy']);
    assert.equal(watcher.transcript.length, 6);
  });

  it('reports later changes: healthy, then unhealthy, then healthy again', async (t) => {
    let status = 200;
    const app = await httpApp((_n, _req, res) => res.writeHead(status).end());
    const { watcher, changes } = watch(t, app.port, { healthyThreshold: 1, unhealthyThreshold: 2 });
    const next = (): Promise<HealthStatus> => new Promise((resolve) => { const off = watcher.onChange((s) => { off(); resolve(s); }); });
    assert.equal(await next(), 'healthy');
    status = 503;
    assert.equal(await next(), 'unhealthy');
    status = 200;
    assert.equal(await next(), 'healthy');
    assert.deepEqual(changes, ['healthy', 'unhealthy', 'healthy']);
  });

  it(`keeps only the last ${TRANSCRIPT_SIZE} results`, async (t) => {
    const app = await statusApp(200);
    const { watcher } = watch(t, app.port, { interval: 1 });
    const seen = await nextProbes(watcher, TRANSCRIPT_SIZE + 5);
    assert.deepEqual(watcher.transcript, seen.slice(5));
  });

  it('stops probing on stop(): no request reaches the app afterwards', async (t) => {
    const app = await statusApp(200);
    const { watcher } = watch(t, app.port);
    await nextProbes(watcher, 3);
    watcher.stop();
    const hits = app.hits();
    const transcript = watcher.transcript;
    // let several intervals pass, measured by another watcher's probes rather than a sleep
    const control = await statusApp(200);
    await nextProbes(watch(t, control.port).watcher, 6);
    assert.equal(app.hits(), hits);
    assert.deepEqual(watcher.transcript, transcript);
    assert.equal(watcher.isStopped, true);
  });

  it('aborts a probe in flight on stop() and drops its result', async (t) => {
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    let closed!: Promise<void>;
    const app = await httpApp((_n, req) => {
      closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
      arrived();
    });
    const { watcher } = watch(t, app.port, { timeout: 10_000 });
    let probes = 0;
    watcher.onProbe(() => probes++);
    await reached;
    watcher.stop();
    await closed;
    assert.equal(probes, 0);
    assert.deepEqual(watcher.transcript, []);
    assert.equal(app.hits(), 1);
  });

  it('refuses a non-loopback address at once, without any connection attempt', () => {
    const attempts: string[] = [];
    const onSocket = (): void => void attempts.push('socket');
    subscribe('net.client.socket', onSocket);
    try {
      for (const host of ['10.1.2.3', '192.168.0.10', 'db.internal', '::ffff:8.8.8.8']) {
        assert.throws(() => new HealthWatcher({ health: health(), address: { host, port: 80 } }), (error: unknown) => error instanceof ImagoError && /^refusing to probe/.test(error.message));
      }
    } finally {
      unsubscribe('net.client.socket', onSocket);
    }
    assert.deepEqual(attempts, []);
  });
});

describe('waitForVerdict', () => {
  it('says timeout when no verdict comes before the deadline', async (t) => {
    const app = await statusApp(503);
    const { watcher } = watch(t, app.port, { unhealthyThreshold: 1000 });
    const started = Date.now();
    assert.equal(await waitForVerdict(watcher, 80), 'timeout');
    assert.ok(Date.now() - started >= 75);
    assert.equal(watcher.status, 'starting');
    assert.ok(watcher.transcript.length >= 2, 'the watcher kept probing meanwhile');
  });

  it('answers at once for a watcher that already has a verdict', async (t) => {
    const app = await statusApp(200);
    const { watcher } = watch(t, app.port, { healthyThreshold: 1 });
    assert.equal(await waitForVerdict(watcher, 3000), 'healthy');
    assert.equal(await waitForVerdict(watcher, 0), 'healthy');
  });

  it('says timeout, without waiting for the deadline, when the watcher stops first', async (t) => {
    const app = await statusApp(503);
    const { watcher } = watch(t, app.port, { unhealthyThreshold: 1000 });
    const verdict = waitForVerdict(watcher, 60_000);
    await nextProbes(watcher, 1);
    watcher.stop();
    assert.equal(await verdict, 'timeout');
    assert.equal(await waitForVerdict(watcher, 60_000), 'timeout');
  });
});

describe('HealthWatcher timers', () => {
  it('never keep a process alive: a program that forgets its watcher still exits', async () => {
    const { execFile } = await import('node:child_process');
    const port = await freePort();
    const program = `
      import { HealthWatcher } from './src/health/health-gate.ts';
      const health = { check: { kind: 'tcp' }, interval: 50, timeout: 1000, startPeriod: 0, healthyThreshold: 1, unhealthyThreshold: 1000 };
      new HealthWatcher({ health, address: { host: '127.0.0.1', port: ${port} } });
      console.log('started');`;
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { cwd: new URL('../..', import.meta.url), timeout: 10_000 }, (error, out) =>
        resolve({ code: error ? (error.code as number | null) ?? null : 0, stdout: out }),
      );
      child.stdin?.end();
    });
    assert.equal(stdout.trim(), 'started');
    assert.equal(code, 0);
  });

  it('probes every startInterval during the start period, so an app is found healthy within that of answering, then every interval', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const probes: number[] = [];
    const answersAt = start + 1234;
    const probe = async (): Promise<ProbeResult> => {
      probes.push(clock.now() - start);
      return { ok: clock.now() >= answersAt, at: clock.now(), ms: 0, detail: 'fake' };
    };
    const watcher = new HealthWatcher({ health: health({ interval: 1000, startInterval: 100, startPeriod: 5000, healthyThreshold: 1 }), address: { host: '127.0.0.1', port: 1 }, startedAt: start, clock, probe });
    try {
      const took = await clock.until('healthy', () => watcher.status === 'healthy', 10_000, 5);
      assert.ok(took >= 1234 && took <= 1234 + 100, `healthy ${took} ms after start`);
      assert.ok(watcher.healthyAt! - answersAt <= 100);
      assert.deepEqual(probes.slice(0, 3), [0, 100, 200]);
      const before = probes.length;
      await clock.advance(3000);
      assert.equal(probes.length - before, 3, 'once healthy: every interval');
    } finally {
      watcher.stop();
    }
  });
});
