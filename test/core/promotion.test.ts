import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decidePromotion, formatSpan, type PromotionPick, type SourceRelease } from '../../src/core/promotion.js';

const H = 3_600_000;
const NOW = Date.parse('2026-12-01T12:00:00Z');
const at = (hoursAgo: number) => new Date(NOW - hoursAgo * H).toISOString();
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;

/** Staging: A went live 5 h ago and served 3 h; B failed; C has been live for 2 h. */
const staging: SourceRelease[] = [
  { version: 1, digest: A, status: 'superseded', finishedAt: at(5) },
  { version: 2, digest: B, status: 'failed', reason: 'exit code 3', finishedAt: at(4) },
  { version: 3, digest: C, status: 'live', finishedAt: at(2) },
];

const decide = (pick: PromotionPick, minSoak = 0, force = false, releases = staging) => decidePromotion({ source: "'web' in staging", releases, pick, now: NOW, minSoak, force });

describe('decidePromotion', () => {
  const table: Array<[string, PromotionPick, number, boolean, { version?: number; refused?: RegExp; forceable?: boolean; overridden?: number }]> = [
    ['the live release by default', { kind: 'live' }, 0, false, { version: 3 }],
    ['live long enough for minSoak', { kind: 'live' }, 2 * H, false, { version: 3 }],
    ['not live long enough', { kind: 'live' }, 3 * H, false, { refused: /release 3 of 'web' in staging was live there for 2h00m, and the target asks for 3h00m \(minSoak\)/, forceable: true }],
    ['not long enough, forced', { kind: 'live' }, 3 * H, true, { version: 3, overridden: 1 }],
    ['a failed release, by version', { kind: 'version', version: 2 }, 0, false, { refused: /release 2 of 'web' in staging never passed its health gate there \(it failed: exit code 3\)/, forceable: true }],
    ['a failed digest', { kind: 'digest', digest: B }, 0, false, { refused: /never passed its health gate/, forceable: true }],
    ['a failed digest, forced', { kind: 'digest', digest: B }, 0, true, { version: 2, overridden: 1 }],
    ['a superseded release soaked for as long as it served (3 h)', { kind: 'digest', digest: A }, 3 * H, false, { version: 1 }],
    ['a superseded release that served less than minSoak', { kind: 'version', version: 1 }, 4 * H, false, { refused: /was live there for 3h00m/, forceable: true }],
    ['a digest never deployed there: never forced', { kind: 'digest', digest: `sha256:${'d'.repeat(64)}` }, 0, true, { refused: /was never deployed to 'web' in staging: deploy it there first/, forceable: false }],
    ['a release that does not exist', { kind: 'version', version: 9 }, 0, true, { refused: /has no release 9 \(it has 1, 2, 3\)/, forceable: false }],
  ];
  for (const [name, pick, minSoak, force, expect] of table) {
    it(name, () => {
      const decision = decide(pick, minSoak, force);
      if (expect.refused) {
        assert.equal(decision.ok, false);
        if (!decision.ok) {
          assert.match(decision.reason, expect.refused);
          assert.equal(decision.forceable, expect.forceable);
        }
        return;
      }
      assert.equal(decision.ok, true, decision.ok ? '' : decision.reason);
      if (decision.ok) {
        assert.equal(decision.release.version, expect.version);
        assert.equal(decision.overridden.length, expect.overridden ?? 0);
      }
    });
  }

  it('--image takes the newest release of the digest: a newer run of it that was rolled back is refused, not passed over', () => {
    const rerun: SourceRelease[] = [...staging, { version: 4, digest: A, status: 'rolled-back', finishedAt: at(1) }, { version: 5, digest: C, status: 'live', finishedAt: at(0.5) }];
    const decision = decide({ kind: 'digest', digest: A }, 0, false, rerun);
    assert.ok(!decision.ok && decision.forceable && /release 4 of 'web' in staging was rolled back there/.test(decision.reason));
  });

  it('a rolled-back release is refused unless forced; none live is never forced', () => {
    const rolledBack: SourceRelease[] = [
      { version: 1, digest: A, status: 'live', finishedAt: at(5) },
      { version: 2, digest: C, status: 'rolled-back', finishedAt: at(3) },
    ];
    const refused = decide({ kind: 'version', version: 2 }, 0, false, rolledBack);
    assert.ok(!refused.ok && refused.forceable && /was rolled back there/.test(refused.reason));
    const none = decide({ kind: 'live' }, 0, true, [{ version: 1, digest: A, status: 'failed', finishedAt: at(1) }]);
    assert.ok(!none.ok && !none.forceable && /has no live release to promote \(its newest, release 1, is failed\)/.test(none.reason));
  });

  it('formats spans for people', () => {
    assert.deepEqual([formatSpan(45_000), formatSpan(750_000), formatSpan(3 * H + 300_000), formatSpan(50 * H)], ['45s', '12m30s', '3h05m', '2d02h']);
  });
});
