import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, startServer } from '../support/cli.js';
import { freePort, waitFor } from '../support/net.js';
import { writeHelloProject } from '../support/project.js';
import { waitForExit } from '../../src/util/pids.js';

describe('/metrics', () => {
  const servers: ChildProcess[] = [];
  let home = '';
  let prometheus: ChildProcess | undefined;
  after(async () => {
    if (prometheus?.pid && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      if (!(await waitForExit(prometheus.pid, 10_000))) prometheus.kill('SIGKILL');
    }
    await cleanUpHome(home, servers, ['process']);
  });

  it('serves the Prometheus text format behind the token, and a real Prometheus scrapes it and answers a query with the value', async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-metrics-'));
    const project = await mkdtemp(join(tmpdir(), 'imago-metrics-project-'));
    after(() => rm(project, { recursive: true, force: true }));
    const listen = await freePort();
    await writeHelloProject(project, ['    replicas: 2', '    provider: process', `    listen: 127.0.0.1:${listen}`, '    health: { http: /healthz, interval: 100ms, startPeriod: 20s }', '    stopGrace: 2s'], { hello: { host: ['node', 'busybox'] } });
    assert.equal((await imago(['bake'], { cwd: project, home })).code, 0);
    const api = await freePort();
    servers.push(await startServer(home, api));
    const deployed = await imago(['deploy', 'web'], { cwd: project, home });
    assert.equal(deployed.code, 0, deployed.stderr);
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`http://127.0.0.1:${listen}/`)).status, 200);

    const token = (await readFile(join(home, 'api-token'), 'utf8')).trim();
    assert.equal((await fetch(`http://127.0.0.1:${api}/metrics`)).status, 401);
    const res = await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^imago_instances\{service="web",state="serving"\} 2$/m);
    assert.match(text, /^imago_deploys_total\{service="web",outcome="succeeded"\} 1$/m);
    assert.match(text, /^imago_deploy_duration_seconds_count\{service="web",outcome="succeeded"\} 1$/m);
    // Each running instance's CPU and memory, from its cgroup (a node process: some MB, some CPU time).
    const memory = [...text.matchAll(/^imago_instance_memory_bytes\{service="web",instance="web-r1-\w+",release="1"\} (\d+)$/gm)].map((m) => Number(m[1]));
    assert.equal(memory.length, 2, text);
    for (const m of memory) assert.ok(m > 5_000_000 && m < 2_000_000_000, `memory ${m}`);
    const cpu = [...text.matchAll(/^imago_instance_cpu_seconds_total\{service="web",instance="web-r1-\w+",release="1"\} ([\d.e-]+)$/gm)].map((m) => Number(m[1]));
    assert.equal(cpu.length, 2);
    for (const c of cpu) assert.ok(c > 0, `cpu ${c}`);
    await waitFor('the router counted the 20 requests', async () => {
      const t = await (await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      const m = /^imago_router_requests_total\{service="web",data_plane="(?:haproxy|built-in)"\} (\d+)$/m.exec(t);
      return m !== null && Number(m[1]) >= 20;
    }, 10_000);
    await waitFor('the log store counted the instances starting', async () => {
      const t = await (await fetch(`http://127.0.0.1:${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      const m = /^imago_log_lines_total\{service="web"\} (\d+)$/m.exec(t);
      return m !== null && Number(m[1]) >= 2;
    }, 10_000);

    // A real Prometheus on loopback, scraping every second with the API token.
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'imago-prometheus-'));
    after(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global: { scrape_interval: 1s, scrape_timeout: 1s }',
        'scrape_configs:',
        '  - job_name: imago',
        `    authorization: { type: Bearer, credentials_file: ${join(home, 'api-token')} }`,
        `    static_configs: [{ targets: ['127.0.0.1:${api}'] }]`,
        '',
      ].join('\n'),
    );
    let output = '';
    prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const query = async (q: string): Promise<string | undefined> => {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
      if (!r?.ok) return undefined;
      const body = (await r.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
      return body.data?.result?.[0]?.value[1];
    };
    try {
      await waitFor('Prometheus scraped imago and answers imago_instances', async () => (await query('imago_instances{service="web",state="serving"}')) === '2', 30_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}; Prometheus printed: ${output.slice(-1500)}`);
    }
    assert.equal(await query('up{job="imago"}'), '1');
    assert.equal(await query('sum(imago_deploys_total{service="web"})'), '1');
  });
});
