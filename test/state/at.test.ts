import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runningAt } from '../../src/state/at.js';
import type { LedgerEvent } from '../../src/state/types.js';

let seq = 0;
const ev = (minute: number, kind: string, over: Partial<LedgerEvent> = {}): LedgerEvent => ({
  seq: ++seq,
  at: new Date(Date.UTC(2026, 11, 1, 12, minute)).toISOString(),
  actor: 'alice@host',
  kind,
  service: 'web',
  releaseId: undefined,
  instance: undefined,
  data: {},
  prevHash: '',
  hash: '',
  ...over,
});
const t = (minute: number, second = 30) => Date.UTC(2026, 11, 1, 12, minute, second);

describe('runningAt (what ran at a moment, from the ledger)', () => {
  // Release 1 on a, b; release 2 replaces them with c, d; release 3 (keepPrevious) with e, f,
  // keeping c and d; a rollback (release 4, release 2's content) adopts c and d.
  const events = [
    ev(0, 'release.created', { releaseId: 1 }),
    ev(0, 'instance.created', { releaseId: 1, instance: 'a' }),
    ev(0, 'instance.created', { releaseId: 1, instance: 'b' }),
    ev(1, 'release.live', { releaseId: 1 }),
    ev(2, 'instance.created', { releaseId: 2, instance: 'c' }),
    ev(2, 'instance.created', { releaseId: 2, instance: 'd' }),
    ev(3, 'release.live', { releaseId: 2 }),
    ev(3, 'instance.stopped', { releaseId: 1, instance: 'a' }),
    ev(3, 'instance.stopped', { releaseId: 1, instance: 'b' }),
    ev(5, 'instance.created', { releaseId: 3, instance: 'e' }),
    ev(5, 'instance.created', { releaseId: 3, instance: 'f' }),
    ev(6, 'release.live', { releaseId: 3 }),
    ev(8, 'instance.adopted', { releaseId: 4, instance: 'c' }),
    ev(8, 'instance.adopted', { releaseId: 4, instance: 'd' }),
    ev(8, 'release.live', { releaseId: 4 }),
    ev(9, 'instance.crashed', { releaseId: 3, instance: 'e' }),
    ev(9, 'instance.stopped', { releaseId: 3, instance: 'f' }),
    ev(4, 'release.live', { releaseId: 9, service: 'api' }),
  ];
  const at = (ms: number) => runningAt(events, ms).find((s) => s.service === 'web')!;
  const ids = (ms: number) => at(ms).instances.map((i) => `${i.id}:${i.releaseId}`).sort();

  it('names the live release and the instances of four moments', () => {
    assert.equal(at(t(1)).liveReleaseId, 1);
    assert.deepEqual(ids(t(1)), ['a:1', 'b:1']);
    assert.equal(at(t(4)).liveReleaseId, 2);
    assert.deepEqual(ids(t(4)), ['c:2', 'd:2']);
    // keepPrevious: release 2's instances still ran beside release 3's.
    assert.equal(at(t(7)).liveReleaseId, 3);
    assert.deepEqual(ids(t(7)), ['c:2', 'd:2', 'e:3', 'f:3']);
    // The rollback adopted them: the same instances, now release 4's.
    assert.equal(at(t(9, 59)).liveReleaseId, 4);
    assert.deepEqual(ids(t(9, 59)), ['c:4', 'd:4']);
  });

  it('knows nothing before the first event, and keeps services apart', () => {
    assert.deepEqual(runningAt(events, Date.UTC(2026, 0, 1)), []);
    assert.equal(runningAt(events, t(5)).find((s) => s.service === 'api')!.liveReleaseId, 9);
    assert.equal(at(t(2, 10)).liveReleaseId, 1, 'release 2 was being deployed, release 1 still live');
    assert.deepEqual(ids(t(2, 10)), ['a:1', 'b:1', 'c:2', 'd:2']);
  });
});
