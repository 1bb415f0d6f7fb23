import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LogStore, type LogLine } from '../../src/logs/log-store.js';
import { formatSyslog, octetFrame, parseSyslogTarget } from '../../src/logs/syslog.js';
import { SyslogForwarder } from '../../src/logs/syslog-forwarder.js';
import { waitForExit } from '../../src/util/pids.js';
import { connects, freePort, waitFor } from '../support/net.js';

describe('syslog messages', () => {
  it('formats a line as RFC 5424 with imago structured data, octet-counted', () => {
    const message = formatSyslog({ id: 42, at: Date.UTC(2026, 11, 1, 12, 0, 0, 5), service: 'web', env: 'pr"od]', release: 3, instance: 'web-r3-abc', stream: 'output', text: 'GET / 200 – ok' }, 'host 1');
    assert.equal(message, '<134>1 2026-12-01T12:00:00.005Z host_1 web web-r3-abc - [imago@32473 env="pr\\"od\\]" release="3" id="42"] GET / 200 – ok');
    assert.equal(octetFrame('é'), '2 é');
  });

  it('takes tcp:// and tls:// targets, and names what it expected otherwise', () => {
    assert.deepEqual(parseSyslogTarget('tcp://127.0.0.1:514'), { tls: false, host: '127.0.0.1', port: 514, url: 'tcp://127.0.0.1:514' });
    assert.deepEqual(parseSyslogTarget('tls://[::1]:6514'), { tls: true, host: '::1', port: 6514, url: 'tls://[::1]:6514' });
    for (const bad of ['udp://h:514', 'tcp://h', 'tcp://h:0', 'h:514']) assert.match((parseSyslogTarget(bad) as { error: string }).error, /expected tcp:\/\/host:port or tls:\/\/host:port/);
  });
});

/**
 * An rsyslog configuration in `dir` that takes syslog over TCP (or TLS, with `dir`'s ca.pem,
 * server.pem and server.key) on `port` and writes each message as one line to `out`.
 */
async function rsyslogConf(dir: string, port: number, options: { tls?: boolean } = {}): Promise<{ conf: string; out: string }> {
  const out = join(dir, 'received.log');
  const conf = join(dir, 'rsyslog.conf');
  const tls = options.tls
    ? ` defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="${join(dir, 'ca.pem')}" defaultNetstreamDriverCertFile="${join(dir, 'server.pem')}" defaultNetstreamDriverKeyFile="${join(dir, 'server.key')}"`
    : '';
  await writeFile(
    conf,
    [
      `global(workDirectory="${dir}"${tls})`,
      options.tls ? 'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")' : 'module(load="imtcp")',
      `input(type="imtcp" address="127.0.0.1" port="${port}")`,
      'template(name="line" type="string" string="%app-name% %procid% %structured-data% %msg%\\n")',
      `*.* action(type="omfile" file="${out}" template="line")`,
      '',
    ].join('\n'),
  );
  return { conf, out };
}

describe('forwarding to rsyslog', () => {
  const daemons: ChildProcess[] = [];
  let dir = '';
  after(async () => {
    for (const d of daemons) if (d.pid && d.exitCode === null && d.signalCode === null) {
      d.kill('SIGKILL');
      await waitForExit(d.pid, 5_000);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Starts rsyslogd on `conf` in the foreground and waits until it takes connections on `port`. */
  const rsyslogd = async (conf: string, port: number): Promise<ChildProcess> => {
    let said = '';
    const d = spawn('rsyslogd', ['-n', '-f', conf, '-i', `${conf}.pid`], { stdio: ['ignore', 'pipe', 'pipe'] });
    d.stdout!.on('data', (b: Buffer) => (said += b.toString()));
    d.stderr!.on('data', (b: Buffer) => (said += b.toString()));
    daemons.push(d);
    await waitFor('rsyslogd listens', async () => (await connects(port)) || d.exitCode !== null, 10_000);
    assert.equal(d.exitCode, null, `rsyslogd exited: ${said}`);
    return d;
  };

  it('delivers every line, in order, across a restart of rsyslog', async () => {
    assert.equal(spawnSync('rsyslogd', ['-v']).status, 0, 'rsyslogd is installed (scripts/system-deps.sh installs it)');
    dir = await mkdtemp(join(tmpdir(), 'imago-syslog-'));
    const port = await freePort();
    const { conf, out } = await rsyslogConf(dir, port);
    const startRsyslog = () => rsyslogd(conf, port);
    const store = new LogStore(join(dir, 'logs.db'));
    let n = 0;
    const append = (count: number) => {
      const lines: LogLine[] = [];
      for (let i = 0; i < count; i++) lines.push({ at: Date.now(), service: 'web', env: 'prod', release: 1, instance: 'web-r1-a', stream: 'output', text: `line ${++n}` });
      store.append(lines);
    };
    const received = async () => {
      const text = await readFile(out, 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).map((l) => Number(/id="(\d+)"/.exec(l)?.[1]));
    };
    const firstSeen = (ids: number[]) => [...new Set(ids)];

    let rsyslog = await startRsyslog();
    append(500);
    const forwarder = new SyslogForwarder(store, parseSyslogTarget(`tcp://127.0.0.1:${port}`) as never, { backoff: { minMs: 50, maxMs: 500 }, batch: 100 });
    forwarder.start();
    try {
      await waitFor('the first 500 lines arrived', async () => firstSeen(await received()).length >= 500, 20_000);
      const sample = (await readFile(out, 'utf8')).split('\n')[0]!;
      assert.match(sample, /^web web-r1-a \[imago@32473 env="prod" release="1" id="1"\] ?line 1$/);

      // Lines keep coming while rsyslog stops, stays down, and starts again.
      const feeding = setInterval(() => append(20), 10);
      try {
        await waitFor('more lines in flight', () => n >= 800, 10_000);
        rsyslog.kill('SIGTERM');
        assert.ok(await waitForExit(rsyslog.pid!, 10_000), 'rsyslogd stopped');
        await waitFor('the forwarder saw the connection go', () => !forwarder.state.connected, 10_000);
        const downAt = n;
        await waitFor('lines printed while rsyslog was down', () => n >= downAt + 300, 10_000);
        rsyslog = await startRsyslog();
      } finally {
        clearInterval(feeding);
      }
      append(200);
      const total = n;
      await waitFor(`all ${total} lines arrived`, async () => firstSeen(await received()).length >= total, 30_000);
      const ids = await received();
      assert.deepEqual(firstSeen(ids), Array.from({ length: total }, (_, i) => i + 1), 'every line, in order');
      // Only the lines of the resend window can come twice.
      assert.ok(ids.length - total <= forwarder.state.resent, `${ids.length - total} repeats, ${forwarder.state.resent} resent`);
      assert.equal(forwarder.state.dropped, 0);
    } finally {
      await forwarder.close();
      store.close();
    }
  });

  it('forwards over TLS to a server whose certificate the CA signed, and refuses one it did not sign', async () => {
    const tlsDir = await mkdtemp(join(tmpdir(), 'imago-syslog-tls-'));
    after(() => rm(tlsDir, { recursive: true, force: true }));
    const ssl = (args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: tlsDir, encoding: 'utf8' });
      assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
    };
    // A CA, the server's certificate for 127.0.0.1 signed by it, and a CA that signed nothing here.
    for (const ca of ['ca', 'other-ca']) ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=imago test ${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`]);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr']);
    await writeFile(join(tlsDir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'san.ext', '-out', 'server.pem']);
    const port = await freePort();
    const { conf, out } = await rsyslogConf(tlsDir, port, { tls: true });
    await rsyslogd(conf, port);
    const store = new LogStore(join(tlsDir, 'logs.db'));
    store.append(Array.from({ length: 300 }, (_, i): LogLine => ({ at: Date.now(), service: 'web', env: 'prod', release: 1, instance: 'web-r1-a', stream: i % 2 ? 'stderr' : 'stdout', text: `secret line ${i + 1}` })));
    const target = parseSyslogTarget(`tls://127.0.0.1:${port}`) as never;
    const options = { backoff: { minMs: 50, maxMs: 200 } };

    const wrong = new SyslogForwarder(store, target, { ...options, ca: await readFile(join(tlsDir, 'other-ca.pem'), 'utf8') });
    wrong.start();
    try {
      await waitFor('the forwarder to refuse the certificate', () => /certificate|self.signed|unable to verify/i.test(wrong.state.lastError ?? ''), 10_000);
      assert.equal(wrong.state.connected, false);
    } finally {
      await wrong.close();
    }
    assert.equal((await readFile(out, 'utf8').catch(() => '')).length, 0, 'nothing reached a server the CA did not vouch for');

    const right = new SyslogForwarder(store, target, { ...options, ca: await readFile(join(tlsDir, 'ca.pem'), 'utf8') });
    right.start();
    try {
      const ids = async () => (await readFile(out, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => Number(/id="(\d+)"/.exec(l)?.[1]));
      await waitFor('all 300 lines arrived over TLS', async () => new Set(await ids()).size >= 300, 20_000);
      assert.deepEqual([...new Set(await ids())], Array.from({ length: 300 }, (_, i) => i + 1), 'every line, in order');
      assert.match((await readFile(out, 'utf8')).split('\n')[1]!, /^web web-r1-a \[imago@32473 env="prod" release="1" id="2"\] ?secret line 2$/);
    } finally {
      await right.close();
      store.close();
    }
  });
});
