import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/config/duration.js';
import { isCleanAbsolutePath, isPathInside } from '../../src/config/paths.js';
import { parseMode, parseOwner } from '../../src/config/permissions.js';

test('parseDuration reads units, mixtures, fractions and bare seconds', () => {
  const cases: Array<[string | number, number]> = [
    ['250ms', 250], ['5s', 5000], ['1m30s', 90_000], ['2h', 7_200_000], ['1.5s', 1500],
    [3, 3000], [0.25, 250], ['10', 10_000], ['1ms', 1], ['24h', 86_400_000], [' 5s ', 5000], ['1h1m1s1ms', 3_661_001],
  ];
  for (const [input, expected] of cases) assert.equal(parseDuration(input), expected, `parseDuration(${JSON.stringify(input)})`);
});

test('parseDuration rejects negative, empty and unknown units, saying what came', () => {
  for (const input of ['-5s', -1, '', 'fast', '5d', '5 s', 's', '1.s', Number.NaN, Number.POSITIVE_INFINITY, '0', '0s', '0.1ms', '25h', '3000000h']) {
    const result = parseDuration(input);
    assert.equal(typeof result, 'object', `parseDuration(${String(input)})`);
  }
  assert.deepEqual(parseDuration('fast'), { error: 'expected a duration from 1ms to 24h like "5s", "1m30s" or "250ms", got "fast"' });
  assert.deepEqual(parseDuration(-1), { error: 'expected a duration from 1ms to 24h like "5s", "1m30s" or "250ms", got -1' });
});

test('parseMode reads octal strings, and refuses numbers (755 would be decimal)', () => {
  assert.equal(parseMode('0755'), 0o755);
  assert.equal(parseMode('644'), 0o644);
  assert.equal(parseMode('4755'), 0o4755);
  for (const bad of ['0855', '12345', 'rwx', '', -1, 0o10000, 1.5, 0o755, 755]) assert.equal(typeof parseMode(bad), 'object', String(bad));
  assert.deepEqual(parseMode(755), { error: 'expected an octal mode as a string like "0755", got the number 755 (write it as a string, so 755 cannot be read as decimal)' });
});

test('parseOwner reads uid and uid:gid; a lone uid is also the gid', () => {
  assert.deepEqual(parseOwner('1000:100'), { uid: 1000, gid: 100 });
  assert.deepEqual(parseOwner('1000'), { uid: 1000, gid: 1000 });
  assert.deepEqual(parseOwner(0), { uid: 0, gid: 0 });
  for (const bad of ['app', '1000:', ':1000', '-1', 1.5, '99999999999']) assert.equal(typeof parseOwner(bad), 'object', String(bad));
});

test('path checks look at the text only', () => {
  for (const ok of ['/', '/app', '/app/', '/usr/local/bin']) assert.ok(isCleanAbsolutePath(ok), ok);
  for (const bad of ['app', '', '/app/../etc', '/./app', '..']) assert.ok(!isCleanAbsolutePath(bad), bad);
  for (const ok of ['.', 'app/', 'a/../b', './src', 'a/b/..', '..foo']) assert.ok(isPathInside(ok), ok);
  for (const bad of ['', '/etc', '..', '../secrets', 'a/../../x', './..']) assert.ok(!isPathInside(bad), bad);
});
