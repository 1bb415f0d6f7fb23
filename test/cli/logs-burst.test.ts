import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, startServer } from '../support/cli.js';
import { freePort, waitFor } from '../support/net.js';
import { writeHelloProject } from '../support/project.js';

/** The bounds this test holds imago to (docs/logs.md states them). */
const BURST_BOUND_MS = 10_000;
const API_BOUND_MS = 2_000;
const LINES = 500_000; // of 100 bytes: 50 MB

// Prints 50 MB in one burst, says how long that took, then serves as hello does.
const BURST = `const line = 'BURST ' + 'x'.repeat(93) + '\\n'; const chunk = line.repeat(1000); const t = Date.now(); for (let i = 0; i < ${LINES / 1000}; i++) process.stdout.write(chunk); console.log('burst of ${LINES} lines took ' + (Date.now() - t) + ' ms'); require('./server.js');`;

describe('an instance printing 50 MB at once', () => {
  const servers: ChildProcess[] = [];
  let home = '';
  after(() => cleanUpHome(home, servers, ['process']));

  it(`is not slowed past ${BURST_BOUND_MS / 1000} s, every line is stored, and the API answers within ${API_BOUND_MS / 1000} s meanwhile`, async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-burst-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-burst-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    await writeHelloProject(project, ['    replicas: 1', '    provider: process', `    listen: 127.0.0.1:${await freePort()}`, '    health: { http: /healthz, interval: 100ms, startPeriod: 30s }'], { hello: { host: ['node', 'busybox'], cmd: ['-e', BURST] } });
    assert.equal((await imago(['bake'], { cwd: project, home })).code, 0);
    const api = await freePort();
    servers.push(await startServer(home, api));
    const token = (await readFile(join(home, 'api-token'), 'utf8')).trim();

    // The API's answer times while the instance starts, prints and is collected.
    let slowest = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const t = performance.now();
        await fetch(`http://127.0.0.1:${api}/v1/status`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer());
        slowest = Math.max(slowest, performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const deployed = await imago(['deploy', 'web'], { cwd: project, home });
      assert.equal(deployed.code, 0, deployed.stderr);
      const stored = async () => {
        const text = await (await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
        return Number(/^imago_log_lines_total\{service="web"\} (\d+)$/m.exec(text)?.[1] ?? 0);
      };
      await waitFor('every line of the burst is in the store', async () => (await stored()) >= LINES + 1, 60_000);
    } finally {
      polling = false;
      await poll;
    }
    const said = await imago(['logs', 'web', '--grep', 'burst of', '--json'], { cwd: project, home });
    const ms = Number(/took (\d+) ms/.exec(said.stdout)?.[1]);
    assert.ok(Number.isFinite(ms), `the instance said how long its burst took: ${said.stdout}${said.stderr}`);
    assert.ok(ms <= BURST_BOUND_MS, `the burst took ${ms} ms`);
    assert.ok(slowest <= API_BOUND_MS, `the slowest API answer took ${Math.round(slowest)} ms`);
    const counted = await imago(['logs', 'web', '--grep', 'BURST', '--tail', '3'], { cwd: project, home });
    assert.equal(counted.stdout.trim().split('\n').length, 3);
    assert.doesNotMatch(counted.stderr, /dropped/);
  });
});
