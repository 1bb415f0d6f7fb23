import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { selfSigned } from '../support/backends.js';
import { cleanUpHome, imago, startServer } from '../support/cli.js';
import { connects, freePort, getOnce, peerFingerprint, waitFor } from '../support/net.js';
import { helloImage } from '../support/project.js';

interface Status {
  service: string;
  url: string;
  router: { kind: string; pid: number | null };
}

for (const dataPlane of ['haproxy', 'builtin'] as const) {
  describe(`a deploy moves the router, hitless (${dataPlane})`, () => {
    const servers: ChildProcess[] = [];
    let home = '';
    after(() => cleanUpHome(home, servers, ['process']));

    it('renews the TLS pair whose files were replaced, then moves to a new address: no request refused meanwhile, one router process throughout, in the ledger', async () => {
      home = await mkdtemp(join(tmpdir(), `imago-relisten-${dataPlane}-`));
      const project = await mkdtemp(join(tmpdir(), 'imago-relisten-project-'));
      after(() => rm(project, { recursive: true, force: true }));
      const one = selfSigned(project, 'one');
      const two = selfSigned(project, 'two');
      await copyFile(one.cert, join(project, 'web.crt'));
      await copyFile(one.key, join(project, 'web.key'));
      const [first, second] = [await freePort(), await freePort()];
      const config = (port: number) =>
        [
          ...['images:', ...helloImage('hello')],
          'services:',
          '  web:',
          '    image: hello',
          '    replicas: 2',
          `    listen: { address: "127.0.0.1:${port}", tls: { cert: web.crt, key: web.key } }`,
          '    health: { http: /healthz, interval: 100ms }',
          '',
        ].join('\n');
      await writeFile(join(project, 'imago.yaml'), config(first));
      const run = (args: string[]) => imago(args, { cwd: project, home });
      assert.equal((await run(['bake'])).code, 0);
      servers.push(await startServer(home, await freePort(), ['--data-plane', dataPlane]));
      const deployed = await run(['deploy', 'web']);
      assert.equal(deployed.code, 0, deployed.stderr);
      const status = async () => (JSON.parse((await run(['status', '--json'])).stdout) as Status[]).find((s) => s.service === 'web')!;
      const pid = (await status()).router.pid;
      assert.ok(pid, 'the router runs as a process of its own');
      assert.equal(await peerFingerprint(first), fingerprintOf(one.certPem));

      // Clients open a new connection for every request, trusting both pairs.
      let stop = false;
      let port = first;
      let ok = 0;
      const bad: string[] = [];
      // While the router moves, a request to the address it leaves may be refused: clients learn
      // the new one only after. `phase` is odd while it moves; a request that overlapped that is excused.
      let phase = 0;
      const client = async () => {
        while (!stop) {
          const from = phase;
          const answer = await getOnce('https', port, [one.certPem, two.certPem]).then((r) => r.status, (error: unknown) => `error ${String(error)}`);
          if (answer === 200) ok++;
          else if (from === phase && from % 2 === 0) bad.push(String(answer));
        }
      };
      const clients = Array.from({ length: 3 }, client);
      try {
        await waitFor('requests flowing', () => ok >= 20);
        // The files' contents are renewed in place; the next deploy serves them.
        await copyFile(two.cert, join(project, 'web.crt'));
        await copyFile(two.key, join(project, 'web.key'));
        const renewed = await run(['deploy', 'web', '--force']);
        assert.equal(renewed.code, 0, renewed.stderr);
        assert.equal(await peerFingerprint(first), fingerprintOf(two.certPem), 'a new connection gets the renewed certificate');
        const before = ok;
        await waitFor('requests flowing after the renewal', () => ok >= before + 20);
        assert.deepEqual(bad, [], 'no request failed while the pair was renewed');

        await writeFile(join(project, 'imago.yaml'), config(second));
        phase++;
        const moved = await run(['deploy', 'web']);
        assert.equal(moved.code, 0, moved.stderr);
        port = second;
        phase++;
        const after = ok;
        await waitFor('requests flowing at the new address', () => ok >= after + 20);
      } finally {
        stop = true;
        await Promise.all(clients);
      }
      assert.deepEqual(bad, []);
      assert.equal((await status()).url, `https://127.0.0.1:${second}`);
      await waitFor('the old address to stop taking connections', async () => !(await connects(first)));
      assert.equal((await status()).router.pid, pid, 'the same router process throughout');
      const ledger = JSON.parse((await run(['ledger', '--service', 'web', '--json'])).stdout) as Array<{ kind: string; data: { from?: string; to?: string } }>;
      const listens = ledger.filter((e) => e.kind === 'service.listen').map((e) => `${e.data.from} -> ${e.data.to}`);
      assert.deepEqual(listens, [`127.0.0.1:${first} -> 127.0.0.1:${second}`]);
    });
  });
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}



