import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failedAtRouter, parseAccessLine } from '../../src/router/haproxy/access-log.js';
import { maxconnFor, renderConfig, renderErrorFile } from '../../src/router/haproxy/config.js';
import { parseServersState, parseStatCsv } from '../../src/router/haproxy/runtime-api.js';

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

  it('the config: retries as the built-in router does them, no server in it, a bind with TLS when asked', () => {
    const http = renderConfig('web', { host: '127.0.0.1', port: 8080, protocol: 'http' }, files, { threads: 2, maxconn: 1000 });
    assert.match(http, /stats socket \/r\/admin\.sock mode 600 level admin expose-fd listeners/);
    assert.match(http, /retry-on conn-failure empty-response/);
    assert.match(http, /http-request disable-l7-retry unless \{ method GET HEAD OPTIONS PUT DELETE TRACE \} \|\| \{ req\.hdr\(idempotency-key\) -m found \}/);
    assert.match(http, /option redispatch 1/);
    assert.doesNotMatch(http, /^\s*server /m);
    assert.match(http, /bind 127\.0\.0\.1:8080\n/);
    const tls = renderConfig('web', { host: '0.0.0.0', port: 443, protocol: 'http', tls: { cert: 'c', key: 'k' } }, { ...files, tlsPem: '/r/tls.pem' }, { threads: 2, maxconn: 1000 });
    assert.match(tls, /bind 0\.0\.0\.0:443 ssl crt \/r\/tls\.pem/);
    assert.match(tls, /X-Forwarded-Proto https/);
    const tcp = renderConfig('db', { host: '127.0.0.1', port: 6379, protocol: 'tcp' }, files, { threads: 2, maxconn: 1000 });
    assert.match(tcp, /mode tcp/);
    assert.doesNotMatch(tcp, /retry-on|errorfile|http-request/);
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
