import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccessLog, failedAtRouter, parseAccessLine } from '../../src/router/haproxy/access-log.js';
import { maxconnFor, renderConfig, renderErrorFile } from '../../src/router/haproxy/config.js';
import { addCounts, carriedFor, countsOf, NO_COUNTS, NOTHING_CARRIED, readCarried, targetCounts, writeCarried } from '../../src/router/haproxy/counts.js';
import { parseServersState, parseStatCsv } from '../../src/router/haproxy/runtime-api.js';
import { quantileOf } from '../../src/router/router-control.js';
import { tempDir } from '../support/temp.js';

const files = { config: '/r/haproxy.cfg', socket: '/r/admin.sock', pid: '/r/haproxy.pid', errorFiles: { 502: '/r/502.http', 503: '/r/503.http', 504: '/r/504.http' } };

describe('haproxy: what imago writes and reads', () => {
  it('an access line: who failed at the router and who did not', () => {
    const cases: Array<[string, boolean]> = [
      ['r1:a|3|200|----', false],
      ['r1:a|2|503|----', false], // the app's own 503
      ['<NOSRV>|-1|503|SC--', true], // no instance
      ['r1:a|-1|502|SH--', true], // cut before its answer
      ['r1:a|5|200|SD--', true], // cut mid-answer
      ['r1:a|-1|504|sH--', true], // timed out
      ['r1:a|-1|400|CH--', false], // the client went away
    ];
    for (const [line, failed] of cases) assert.equal(failedAtRouter(parseAccessLine(line)!), failed, line);
    assert.equal(parseAccessLine('[WARNING] something'), undefined);
  });

  it('an access line with its level: what it stands for in the histograms (a line of an earlier router stands for itself)', () => {
    const cases: Array<[string, number | undefined]> = [
      ['<5>r1:a|3|200|----|16', 16], // notice: in the 1-in-16 sample
      ['<4>r1:a|3|200|----|16', 1], // warning: logged because traffic was low
      ['<3><NOSRV>|-1|503|SC--|16', 0], // err: a failure outside the sample
      ['<6>r1:a|40|-|----|1', 1], // info: a TCP connection, all logged
      ['r1:a|3|200|----', 1], // raw: a router started by an earlier imago
      ['<5>Server be/r1:a is UP, reason: Layer4 check passed, check duration: 0ms.', undefined], // HAProxy's own
      ['<1>Server be/r1:a is DOWN, reason: Layer4 connection problem', undefined],
      ['<2>r1:a|3|200|----|16', undefined], // a level the config never writes
      ['r1:a|3|200|----|16', undefined], // five fields without a level
    ];
    for (const [line, weight] of cases) assert.equal(parseAccessLine(line)?.weight, weight, line);
    assert.equal(failedAtRouter(parseAccessLine('<3><NOSRV>|-1|503|SC--|16')!), true);
    assert.equal(failedAtRouter(parseAccessLine('<5>r1:a|5|200|SD--|16')!), true);
  });

  it('the access log: a sample counts as the requests it stands for, every failure once, and a torn line waits for its end', async () => {
    const file = join(await tempDir('imago-access-log-'), 'access.log');
    const lines = [
      ...Array.from({ length: 3 }, () => '<5>a|4|200|----|16'),
      '<4>a|40|200|----|16',
      '<3>a|-1|502|SH--|16', // cut before its answer, not sampled: a failure, no latency
      '<5>a|-1|502|SH--|16', // the same, sampled: one failure, and no latency (there was no answer)
      '<3>a|7|200|CD--|16', // the client went away: an error level, not the router's failure
      '<5>Server be/a is UP, reason: Layer4 check passed',
    ];
    writeFileSync(file, `${lines.join('\n')}\n<5>a|4|2`);
    const log = new AccessLog(file);
    log.read();
    assert.equal(log.failed, 2);
    assert.equal(log.latencyOf('a').counts.reduce((x, y) => x + y, 0), 49);
    const p50 = quantileOf(log.latencyOf('a'), 0.5)!;
    assert.ok(p50 >= 5 && p50 < 6, `p50 ${p50} ms: the sampled 4 ms answers (counted as 5, HAProxy's timers being whole ms)`);
    assert.ok(quantileOf(log.latencyOf('a'), 0.95)! < 6, 'the one 40 ms answer stands for 1 of 49');
    assert.ok(quantileOf(log.latencyOf('a'), 0.99)! > 40, 'and is the slowest');
    writeFileSync(file, `${lines.join('\n')}\n<5>a|4|200|----|16\n`);
    log.read();
    assert.equal(log.latencyOf('a').counts.reduce((x, y) => x + y, 0), 65);
  });

  it('the config: retries as the built-in router does them, no server in it, a bind with TLS when asked', () => {
    const http = renderConfig('web', { host: '127.0.0.1', port: 8080, protocol: 'http' }, files, { threads: 2, maxconn: 1000 });
    assert.match(http, /stats socket \/r\/admin\.sock mode 600 level admin expose-fd listeners/);
    assert.match(http, /retry-on conn-failure empty-response/);
    assert.match(http, /http-request disable-l7-retry unless \{ method GET HEAD OPTIONS PUT DELETE TRACE \} \|\| \{ req\.hdr\(idempotency-key\) -m found \}/);
    assert.match(http, /option redispatch 1/);
    assert.doesNotMatch(http, /^\s*server /m);
    // Every request below 1,000 a second, else 1 in 16 and every failure: unsampled requests that went well are never written.
    assert.match(http, /log stdout format short local0 notice\n/);
    assert.match(http, /option log-separate-errors\n/);
    assert.match(http, /http-request set-log-level warning unless busy\n/);
    assert.match(http, /acl busy fe_req_rate ge 1000\n/);
    assert.match(http, /http-request set-log-level notice if \{ rand\(16\) eq 0 \} busy\n/);
    assert.match(http, /log-format "%s\|%Tr\|%ST\|%tsc\|16"/);
    const sampled = renderConfig('web', { host: '127.0.0.1', port: 8080, protocol: 'http' }, files, { threads: 2, maxconn: 1000, accessLog: { everyBelow: 0, oneIn: 4 } });
    assert.match(sampled, /fe_req_rate ge 0\n/);
    assert.match(sampled, /rand\(4\) eq 0/);
    assert.match(sampled, /%tsc\|4"/);
    assert.match(http, /bind 127\.0\.0\.1:8080\n/);
    const tls = renderConfig('web', { host: '0.0.0.0', port: 443, protocol: 'http', tls: { cert: 'c', key: 'k' } }, { ...files, tlsPem: '/r/tls.pem' }, { threads: 2, maxconn: 1000 });
    assert.match(tls, /bind 0\.0\.0\.0:443 ssl crt \/r\/tls\.pem/);
    assert.match(tls, /X-Forwarded-Proto https/);
    const tcp = renderConfig('db', { host: '127.0.0.1', port: 6379, protocol: 'tcp' }, files, { threads: 2, maxconn: 1000 });
    assert.match(tcp, /mode tcp/);
    assert.doesNotMatch(tcp, /retry-on|errorfile|http-request/);
    assert.match(tcp, /log stdout format short local0 info\n/);
  });

  it('its own answers are JSON naming the service, with a length that is right', () => {
    const text = renderErrorFile(503, 'web');
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    assert.match(head, /^HTTP\/1\.1 503 Service Unavailable/);
    assert.equal(Number(/content-length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
    assert.deepEqual(JSON.parse(body), { error: "service 'web' has no healthy instance" });
  });

  it('maxconn fits the open-files limit', () => {
    assert.equal(maxconnFor(20_000), 9_900);
    assert.equal(maxconnFor(1_048_576), 50_000);
    assert.equal(maxconnFor(300), 256);
  });

  it('reads show stat and show servers state as HAProxy 2.6 writes them', () => {
    const stat = parseStatCsv('# pxname,svname,scur,stot,\nbe,r1:a,2,40,\nbe,BACKEND,2,40,\n\n');
    assert.deepEqual(stat.map((r) => [r.svname, r.scur, r.stot]), [['r1:a', '2', '40'], ['BACKEND', '2', '40']]);
    const state = parseServersState(
      '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 be 1 r1:a 127.0.0.1 2 8 7 1 0 1 0 1 6 0 0 0 - 9999 - 0 0 - - 0\n\n',
    );
    assert.deepEqual(state, [{ name: 'r1:a', addr: '127.0.0.1', port: 9999, adminState: 8, weight: 7 }]);
  });
});

describe('haproxy: counts carried over a reload', () => {
  const stat = new Map<string, Record<string, string>>([
    ['FRONTEND', { req_tot: '10', stot: '4' }],
    ['BACKEND', { wredis: '1', wretr: '2' }],
    ['a', { stot: '6', hrsp_2xx: '5', hrsp_5xx: '1', bin: '100', bout: '200' }],
    ['b', { stot: '4', hrsp_2xx: '4', bin: '', bout: '50' }],
  ]);

  it('reads requests (TCP: connections), retries and each server from show stat', () => {
    const http = countsOf(stat, true);
    assert.equal(http.requests, 10);
    assert.equal(countsOf(stat, false).requests, 4);
    assert.equal(http.retried, 3);
    assert.deepEqual(http.targets.a, { requests: 6, responses: { '1xx': 0, '2xx': 5, '3xx': 0, '4xx': 0, '5xx': 1 }, bytesIn: 100, bytesOut: 200 });
    assert.equal(http.targets.b!.bytesIn, 0, 'an empty column is 0');
  });

  it('adds counts, keeping the servers still served only', () => {
    const once = countsOf(stat, true);
    const sum = addCounts(once, once, ['a', 'c']);
    assert.equal(sum.requests, 20);
    assert.equal(sum.retried, 6);
    assert.deepEqual(Object.keys(sum.targets), ['a', 'c']);
    assert.equal(sum.targets.a!.responses['2xx'], 10);
    assert.equal(sum.targets.c!.requests, 0);
  });

  it('counts what a reload carried once another worker answers, and never while the old one does', () => {
    const base = countsOf(stat, true);
    const counted = addCounts(base, base, ['a']);
    const carried = { base, pending: { worker: 7, counted } };
    assert.equal(carriedFor(carried, 7, ['a']).requests, 10, 'worker 7 still answers: the reload has not taken, and it counts itself');
    assert.equal(carriedFor(carried, 8, ['a']).requests, 30, 'another worker answers: the old one is carried');
    assert.equal(carriedFor(carried, 8, ['a']).targets.a!.requests, 18);
    assert.deepEqual(Object.keys(carriedFor(carried, 8, ['a']).targets), ['a'], 'targets no longer served are dropped');
    assert.equal(carriedFor(NOTHING_CARRIED, 8, []).requests, 0);
  });

  it('zero counts are copies: changing one changes no other', () => {
    const zero = targetCounts(NO_COUNTS, 'x');
    zero.responses['2xx'] = 5;
    assert.equal(targetCounts(NO_COUNTS, 'x').responses['2xx'], 0);
  });

  it('reads back what it wrote, and nothing from a missing or damaged file', async () => {
    const dir = await tempDir();
    const file = join(dir, 'carried.json');
    assert.deepEqual(readCarried(file), NOTHING_CARRIED);
    const carried = { base: countsOf(stat, true), pending: { worker: 9, counted: countsOf(stat, false) } };
    writeCarried(file, carried);
    assert.deepEqual(readCarried(file), carried);
    for (const damaged of ['{"base": {"requests": "many"}}', '{"base": {"requests": 1, "retried": 0, "targets": null}}', 'null', '{', '[]']) {
      writeFileSync(file, damaged);
      assert.deepEqual(readCarried(file), NOTHING_CARRIED, damaged);
    }
    // Numbers that are not counts are 0; a pending without a worker is dropped.
    writeFileSync(file, JSON.stringify({ base: { requests: -1, retried: 2, targets: { a: { requests: 'x', responses: null } } }, pending: { counted: NO_COUNTS } }));
    assert.deepEqual(readCarried(file), { base: { requests: 0, retried: 2, targets: { a: targetCounts(NO_COUNTS, 'a') } } });
  });
});
