import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LogCollector, type LogSource } from '../../src/logs/collector.js';
import { LogStore, type LogLine } from '../../src/logs/log-store.js';
import { readFileAt } from '../../src/providers/output-files.js';

const dir = await mkdtemp(join(tmpdir(), 'imago-logs-'));
after(() => rm(dir, { recursive: true, force: true }));
let n = 0;
const freshStore = () => new LogStore(join(dir, `logs-${++n}.db`));

const line = (over: Partial<LogLine>): LogLine => ({ at: 1_000, service: 'web', env: 'default', release: 1, instance: 'web-r1-a', stream: 'output', text: 'hello', ...over });

describe('log store', () => {
  it('answers by service, release, instance, time, a fixed string and a tail, oldest first', () => {
    const store = freshStore();
    store.append([
      line({ at: 1_000, text: 'GET / 200' }),
      line({ at: 2_000, text: 'GET /a 500', instance: 'web-r1-b', stream: 'stderr' }),
      line({ at: 3_000, text: 'GET /b 200', release: 2, instance: 'web-r2-c' }),
      line({ at: 4_000, text: 'other service', service: 'api' }),
      line({ at: 5_000, text: 'GET /c 500 (a.b)', release: 2, instance: 'web-r2-c' }),
    ]);
    const texts = (q: Parameters<LogStore['query']>[0]) => store.query(q).map((l) => l.text);
    assert.deepEqual(texts({ service: 'web' }), ['GET / 200', 'GET /a 500', 'GET /b 200', 'GET /c 500 (a.b)']);
    assert.deepEqual(texts({ service: 'web', release: 2 }), ['GET /b 200', 'GET /c 500 (a.b)']);
    assert.deepEqual(texts({ service: 'web', instance: 'web-r1-b' }), ['GET /a 500']);
    assert.deepEqual(texts({ service: 'web', stream: 'stderr' }), ['GET /a 500']);
    assert.deepEqual(texts({ service: 'web', since: 2_000, until: 3_000 }), ['GET /a 500', 'GET /b 200']);
    assert.deepEqual(texts({ service: 'web', grep: '500' }), ['GET /a 500', 'GET /c 500 (a.b)']);
    // A fixed string, not a pattern: the dot and brackets match themselves only.
    assert.deepEqual(texts({ service: 'web', grep: '(a.b)' }), ['GET /c 500 (a.b)']);
    assert.deepEqual(texts({ service: 'web', grep: 'a*b' }), []);
    assert.deepEqual(texts({ service: 'web', tail: 2 }), ['GET /b 200', 'GET /c 500 (a.b)']);
    const first = store.query({ service: 'web', limit: 1 })[0]!;
    assert.deepEqual(texts({ service: 'web', afterId: first.id, grep: '200' }), ['GET /b 200']);
    assert.equal(store.query({ service: 'api' })[0]!.release, 1);
    store.close();
  });

  it('retention by age removes the lines older than the age, oldest first, and counts their bytes out', () => {
    const store = freshStore();
    store.append(Array.from({ length: 12_000 }, (_, i) => line({ at: i, text: `line ${i}` })));
    const before = store.bytes();
    const removed = store.retain({ maxAgeMs: 2_000, maxBytes: Number.MAX_SAFE_INTEGER }, 12_000);
    assert.equal(removed, 10_000);
    const left = store.query({ service: 'web', limit: 100_000 });
    assert.equal(left.length, 2_000);
    assert.equal(left[0]!.text, 'line 10000');
    assert.ok(store.bytes() < before / 5, `bytes ${store.bytes()} of ${before}`);
    store.close();
  });

  it('retention by size removes the oldest lines until the rest fit', () => {
    const store = freshStore();
    store.append(Array.from({ length: 20_000 }, (_, i) => line({ at: 0, text: `${String(i).padStart(6, '0')} ${'x'.repeat(100)}` })));
    const budget = Math.floor(store.bytes() / 4);
    store.retain({ maxAgeMs: Number.MAX_SAFE_INTEGER, maxBytes: budget }, 0);
    assert.ok(store.bytes() <= budget, `${store.bytes()} bytes kept, budget ${budget}`);
    const left = store.query({ service: 'web', limit: 100_000 });
    assert.ok(left.length >= 4_900 && left.length <= 5_000, `${left.length} lines left`);
    // The newest survive, in order, with no gap.
    assert.equal(left.at(-1)!.text.slice(0, 6), '019999');
    assert.equal(Number(left[0]!.text.slice(0, 6)), 20_000 - left.length);
    store.close();
  });
});

describe('log collector', () => {
  const source = (file: string, over: Partial<LogSource> = {}): LogSource => ({ key: file, read: (position, buffer) => readFileAt(file, position, buffer), service: 'web', env: 'default', release: 3, instance: 'web-r3-x', stream: 'stdout', ended: false, ...over });

  it('reads on from where it stopped, across a new store object and collector: nothing lost, nothing twice', async () => {
    const file = join(dir, 'a.log');
    const dbFile = join(dir, 'restart.db');
    writeFileSync(file, 'one\ntwo\nthr');
    let store = new LogStore(dbFile);
    assert.equal((await new LogCollector(store).collect([source(file)])).lines, 2);
    store.close();
    // The "control plane" starts again; the instance went on printing meanwhile.
    appendFileSync(file, 'ee\nfour\n');
    store = new LogStore(dbFile);
    const collector = new LogCollector(store);
    assert.equal((await collector.collect([source(file)])).lines, 2);
    assert.equal((await collector.collect([source(file)])).lines, 0);
    assert.deepEqual(store.query({ service: 'web' }).map((l) => [l.text, l.release, l.instance]), [
      ['one', 3, 'web-r3-x'],
      ['two', 3, 'web-r3-x'],
      ['three', 3, 'web-r3-x'],
      ['four', 3, 'web-r3-x'],
    ]);
    store.close();
  });

  it('reads on an instance from before the streams were apart: its file position is its stdout position', () => {
    const dbFile = join(dir, 'legacy.db');
    let store = new LogStore(dbFile);
    store.appendBlocks([], [{ key: '/home/me/.imago/logs/web-r3-x.log', instance: 'web-r3-x', offset: 42 }]);
    store.close();
    store = new LogStore(dbFile);
    assert.equal(store.positionOf('web-r3-x:stdout'), 42);
    assert.equal(store.positionOf('/home/me/.imago/logs/web-r3-x.log'), 0);
    store.close();
  });

  it('keeps empty lines, drops the CR of CRLF, and gives every line its own id across blocks', async () => {
    const file = join(dir, 'crlf.log');
    writeFileSync(file, 'a\r\nb\n\nc\n' + 'n\n'.repeat(2_500));
    const store = freshStore();
    await new LogCollector(store).collect([source(file)]);
    const lines = store.query({ service: 'web', limit: 10_000 });
    assert.deepEqual(lines.slice(0, 4).map((l) => l.text), ['a', 'b', '', 'c']);
    assert.equal(lines.length, 2_504);
    // Ids run on with no gap and no repeat, across the blocks of 1,000 lines.
    assert.deepEqual(lines.map((l) => l.id), Array.from({ length: 2_504 }, (_, i) => lines[0]!.id + i));
    assert.equal(store.query({ service: 'web', tail: 1 })[0]!.id, lines.at(-1)!.id);
    assert.equal(store.query({ service: 'web', afterId: lines[1_500]!.id }).length, 1_003);
    store.close();
  });

  it('stores the last line without a newline once the instance has ended, then never reads the file again', async () => {
    const file = join(dir, 'ended.log');
    writeFileSync(file, 'a\nlast words');
    const store = freshStore();
    const collector = new LogCollector(store);
    await collector.collect([source(file)]);
    assert.deepEqual(store.query({ service: 'web' }).map((l) => l.text), ['a']);
    await collector.collect([source(file, { ended: true })]);
    assert.deepEqual(store.query({ service: 'web' }).map((l) => l.text), ['a', 'last words']);
    assert.equal(collector.isDone(file), true);
    store.close();
  });

  it('cuts a line past the length bound, and skips a backlog past its bound, counting every line it dropped', async () => {
    const file = join(dir, 'loud.log');
    const lines = Array.from({ length: 1_000 }, (_, i) => `${String(i).padStart(4, '0')} ${'y'.repeat(95)}`);
    writeFileSync(file, `${lines.join('\n')}\n${'z'.repeat(250)}\n`);
    const store = freshStore();
    // 10 KB of backlog kept of about 100 KB: the oldest 900-odd lines are dropped.
    const collector = new LogCollector(store, { maxBacklogBytes: 10_000, maxLineBytes: 100, bytesPerPass: 1_000_000, skipPerPass: 50_000 });
    // A pass skips at most 50 KB: two passes skip, then the rest is stored.
    let passes = 0;
    while ((await collector.collect([source(file)])).more) passes++;
    assert.equal(passes, 2);
    const kept = store.query({ service: 'web', limit: 10_000 });
    const [drop] = store.drops('web');
    assert.ok(drop, 'a drop is recorded');
    assert.equal(drop.instance, 'web-r3-x');
    // Every line is either stored whole or counted as dropped (the long one is stored in pieces).
    const whole = kept.filter((l) => /^\d{4} /.test(l.text)).length;
    assert.equal(whole + drop.lines, 1_000);
    assert.ok(drop.lines > 850 && drop.lines < 1_000, `${drop.lines} dropped`);
    assert.equal(kept.at(-1)!.text, 'z'.repeat(50));
    assert.equal(kept.at(-2)!.text, 'z'.repeat(100));
    assert.equal(kept.at(-3)!.text, 'z'.repeat(100));
    assert.match(drop.reason, /waited to be collected/);
    store.close();
  });

  it('reads at most its per-pass bound from one file and says more is waiting', async () => {
    const file = join(dir, 'big.log');
    writeFileSync(file, 'x'.repeat(99) + '\n'.repeat(1) + `${'w'.repeat(99)}\n`.repeat(99));
    const store = freshStore();
    const collector = new LogCollector(store, { bytesPerPass: 1_000 });
    const first = await collector.collect([source(file)]);
    assert.equal(first.lines, 10);
    assert.equal(first.more, true);
    let passes = 1;
    while ((await collector.collect([source(file)])).more) passes++;
    assert.equal(store.count(), 100);
    assert.ok(passes >= 9, `${passes} passes`);
    store.close();
  });

  it('bounds a whole pass, and the next pass starts with the file the last one did not reach', async () => {
    const loud = join(dir, 'loud-a.log');
    const quiet = join(dir, 'quiet-b.log');
    writeFileSync(loud, `${'a'.repeat(99)}\n`.repeat(50));
    writeFileSync(quiet, 'b\n');
    const store = freshStore();
    const collector = new LogCollector(store, { bytesPerPass: 10_000, bytesPerPassTotal: 1_000 });
    const sources = [source(loud, { instance: 'a' }), source(quiet, { instance: 'b' })];
    const first = await collector.collect(sources);
    assert.equal(first.lines, 10);
    assert.equal(first.more, true);
    // The quiet one is read next, before the loud one goes on.
    await collector.collect(sources);
    assert.equal(store.query({ service: 'web', instance: 'b' }).length, 1);
    while ((await collector.collect(sources)).more);
    assert.equal(store.query({ service: 'web', instance: 'a', limit: 1_000 }).length, 50);
    store.close();
  });
});

describe('logs query parameters', () => {
  it('reads each filter from the URL, and names a bad number and what was expected', async () => {
    const { logQueryOf } = await import('../../src/server/api.js');
    const q = logQueryOf('web', new URLSearchParams('release=2&instance=web-r2-a&stream=stderr&since=10&until=20&grep=ERR&tail=5&after=7&limit=9'));
    assert.deepEqual(q, { service: 'web', release: 2, instance: 'web-r2-a', stream: 'stderr', since: 10, until: 20, grep: 'ERR', tail: 5, afterId: 7, limit: 9 });
    assert.deepEqual(logQueryOf('web', new URLSearchParams('')), { service: 'web', release: undefined, instance: undefined, stream: undefined, since: undefined, until: undefined, grep: undefined, tail: undefined, afterId: undefined, limit: undefined });
    assert.throws(() => logQueryOf('web', new URLSearchParams('tail=-1')), /logs: 'tail' must be a whole number from 0 to 1000000, got '-1'/);
    assert.throws(() => logQueryOf('web', new URLSearchParams('release=0')), /'release' must be a whole number from 1/);
    assert.throws(() => logQueryOf('web', new URLSearchParams('stream=output')), /logs: 'stream' must be stdout or stderr, got 'output'/);
    assert.throws(() => logQueryOf('web', new URLSearchParams('since=1h')), /'since' must be a whole number from 0 .* got '1h'/);
  });
});

describe('imago logs times', () => {
  it('takes a duration back from now or a date and time, and names what it expected otherwise', async () => {
    const { parseLogTime } = await import('../../src/cli/commands/logs.js');
    const now = Date.parse('2026-12-01T12:00:00Z');
    assert.equal(parseLogTime('--since', '1h', now), now - 3600_000);
    assert.equal(parseLogTime('--since', '2d', now), now - 2 * 86_400_000);
    assert.equal(parseLogTime('--until', '2026-12-01T11:00:00Z', now), Date.parse('2026-12-01T11:00:00Z'));
    assert.equal(parseLogTime('--until', '2026-12-01 11:00Z', now), Date.parse('2026-12-01T11:00Z'));
    // No zone: UTC, as imago prints times.
    assert.equal(parseLogTime('--until', '2026-12-01 11:00', now), Date.parse('2026-12-01T11:00:00Z'));
    assert.equal(parseLogTime('--until', '2026-12-01T11:00:00+01:00', now), Date.parse('2026-12-01T10:00:00Z'));
    assert.throws(() => parseLogTime('--since', 'yesterday', now), /--since: expected a duration back from now .* got 'yesterday'/);
  });
});
