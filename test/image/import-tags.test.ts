import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveImportTags, type FoundNames } from '../../src/image/import-tags.js';
import { pickManifest, type ManifestCandidate } from '../../src/image/pick-manifest.js';
import { containerdName } from '../../src/image/layout-files.js';
import { sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/types.js';

const none: FoundNames = { refNames: [], imageNames: [], repoTags: [] };

test('resolveImportTags: which name:tags an import applies', () => {
  const cases: Array<{ found: Partial<FoundNames>; requested?: string; tags?: string[]; error?: RegExp; warning?: RegExp }> = [
    { found: { refNames: ['web:1'] }, tags: ['web:1'] },
    { found: { refNames: ['web:1', 'web:latest'] }, tags: ['web:1', 'web:latest'] },
    { found: { refNames: ['1.0'] }, error: /only by tag \('1\.0'\): give a name, e\.g\. --tag web or --tag web:1\.0/ },
    { found: { refNames: ['1.0'] }, requested: 'web', tags: ['web:1.0'] },
    { found: { refNames: ['1.0'] }, requested: 'web:2', tags: ['web:2'] },
    { found: { refNames: ['web:1'] }, requested: 'other:9', tags: ['other:9'] },
    { found: { refNames: ['web:1'] }, requested: 'team/other', tags: ['team/other:1'] },
    { found: {}, requested: 'web', tags: ['web:latest'] },
    // docker 25's OCI archives: a bare tag plus containerd's full name.
    { found: { refNames: ['latest'], imageNames: ['docker.io/library/busybox:latest'] }, tags: ['busybox:latest'] },
    { found: { imageNames: ['docker.io/team/web:3'] }, tags: ['team/web:3'] },
    { found: { repoTags: ['web:1'], refNames: ['web:1'], imageNames: ['docker.io/library/web:1'] }, tags: ['web:1'] },
    { found: { repoTags: ['ghcr.io/acme/web:1'] }, tags: ['ghcr.io/acme/web:1'] },
    { found: { repoTags: ['localhost:5000/web:1'] }, tags: [], warning: /ignored the archive's name 'localhost:5000\/web:1'/ },
    { found: { refNames: ['Web:1'] }, tags: [], warning: /ignored the archive's name 'Web:1'/ },
    { found: {}, tags: [], warning: /no name: imported untagged/ },
    { found: {}, requested: 'Bad Name', error: /invalid tag 'Bad Name'/ },
    { found: {}, requested: 'web:bad tag', error: /invalid tag 'web:bad tag'/ },
  ];
  for (const c of cases) {
    const label = JSON.stringify(c);
    const result = resolveImportTags({ ...none, ...c.found }, c.requested);
    if (c.error) {
      assert.ok('error' in result, label);
      assert.match(result.error, c.error, label);
      continue;
    }
    assert.ok(!('error' in result), `${label}: ${'error' in result ? result.error : ''}`);
    assert.deepEqual(result.tags, c.tags, label);
    if (c.warning) assert.match(result.warnings.join('\n'), c.warning, label);
  }
});

const manifest = (n: number, platform?: { os: string; architecture: string; variant?: string }, ref?: string): ManifestCandidate => ({
  descriptor: { mediaType: MediaType.manifest, digest: sha256(`manifest ${n}`), size: 100, ...(platform ? { platform } : {}) },
  annotations: ref ? { 'org.opencontainers.image.ref.name': ref } : {},
});

test('pickManifest: one image, the host platform, or the one asked for', () => {
  const one = pickManifest([manifest(1, undefined, 'web:1'), manifest(1, undefined, 'web:latest')], { architecture: 'amd64' });
  assert.ok(!('error' in one));
  assert.equal(one.descriptor.digest, sha256('manifest 1'));
  assert.deepEqual(one.refNames, ['web:1', 'web:latest']);

  const multi = [manifest(1, { os: 'linux', architecture: 'arm64' }), manifest(2, { os: 'linux', architecture: 'amd64' }), manifest(3, { os: 'unknown', architecture: 'unknown' })];
  const arm = pickManifest(multi, { architecture: 'arm64' });
  assert.ok(!('error' in arm) && arm.descriptor.digest === sha256('manifest 1'));
  const fallback = pickManifest(multi, { architecture: 's390x' });
  assert.ok(!('error' in fallback) && fallback.descriptor.digest === sha256('manifest 2'));
  assert.match(fallback.warnings.join(), /picked linux\/amd64 of the archive's platforms \(linux\/arm64, linux\/amd64\)/);

  const windows = pickManifest([manifest(1, { os: 'windows', architecture: 'amd64' })], { architecture: 'amd64' });
  assert.ok('error' in windows && /no linux\/amd64 image \(it has windows\/amd64\)/.test(windows.error));

  const two = [manifest(1, undefined, 'web:1'), manifest(2, undefined, 'api:1')];
  const ambiguous = pickManifest(two, { architecture: 'amd64' });
  assert.ok('error' in ambiguous && /holds 2 images \(web:1, api:1\): imago imports one at a time/.test(ambiguous.error));
  const chosen = pickManifest(two, { architecture: 'amd64', requested: 'api:1' });
  assert.ok(!('error' in chosen) && chosen.descriptor.digest === sha256('manifest 2'));

  assert.ok('error' in pickManifest([], { architecture: 'amd64' }));
});

test('pickManifest: variants of one architecture give one image, never "holds 2 images"', () => {
  const digestOf = (choice: ReturnType<typeof pickManifest>) => ('error' in choice ? choice.error : choice.descriptor.digest);
  const cases: Array<{ label: string; candidates: ManifestCandidate[]; architecture: string; variant?: string; requested?: string; want: number | RegExp }> = [
    { label: 'arm/v6 + arm/v7 on an arm v7 host', candidates: [manifest(1, { os: 'linux', architecture: 'arm', variant: 'v6' }), manifest(2, { os: 'linux', architecture: 'arm', variant: 'v7' })], architecture: 'arm', variant: 'v7', want: 2 },
    { label: 'arm/v6 + arm/v7, host variant unknown: the first', candidates: [manifest(1, { os: 'linux', architecture: 'arm', variant: 'v6' }), manifest(2, { os: 'linux', architecture: 'arm', variant: 'v7' })], architecture: 'arm', want: 1 },
    { label: 'amd64/v3 + amd64: the one without a variant', candidates: [manifest(1, { os: 'linux', architecture: 'amd64', variant: 'v3' }), manifest(2, { os: 'linux', architecture: 'amd64' })], architecture: 'amd64', want: 2 },
    { label: 'arm64/v8 + arm64 on a v8 host', candidates: [manifest(1, { os: 'linux', architecture: 'arm64' }), manifest(2, { os: 'linux', architecture: 'arm64', variant: 'v8' })], architecture: 'arm64', variant: 'v8', want: 2 },
    { label: 'a platformless manifest beside the host one: the host one', candidates: [manifest(1), manifest(2, { os: 'linux', architecture: 'amd64' })], architecture: 'amd64', want: 2 },
    { label: 'a platformless manifest beside another arch: the platformless one', candidates: [manifest(1, { os: 'linux', architecture: 'arm64' }), manifest(2)], architecture: 'amd64', want: 2 },
    { label: 'amd64 fallback with variants', candidates: [manifest(1, { os: 'linux', architecture: 'amd64', variant: 'v2' }), manifest(2, { os: 'linux', architecture: 'amd64' })], architecture: 's390x', want: 2 },
    {
      label: 'two named images stay two: variants are collapsed per image',
      candidates: [manifest(1, { os: 'linux', architecture: 'amd64' }, 'web:1'), manifest(2, { os: 'linux', architecture: 'amd64', variant: 'v3' }, 'web:1'), manifest(3, { os: 'linux', architecture: 'amd64' }, 'api:1')],
      architecture: 'amd64',
      want: /holds 2 images \(web:1, api:1\)/,
    },
    {
      label: 'and --tag chooses among them',
      candidates: [manifest(1, { os: 'linux', architecture: 'amd64' }, 'web:1'), manifest(2, { os: 'linux', architecture: 'amd64', variant: 'v3' }, 'web:1'), manifest(3, { os: 'linux', architecture: 'amd64' }, 'api:1')],
      architecture: 'amd64',
      requested: 'web:1',
      want: 1,
    },
  ];
  for (const c of cases) {
    const got = digestOf(pickManifest(c.candidates, { architecture: c.architecture, variant: c.variant, requested: c.requested }));
    if (typeof c.want === 'number') assert.equal(got, sha256(`manifest ${c.want}`), `${c.label}: ${got}`);
    else assert.match(got, c.want, c.label);
  }
});

test('containerdName: docker.io is implied for names without a registry', () => {
  assert.equal(containerdName('web:1'), 'docker.io/library/web:1');
  assert.equal(containerdName('team/web:1'), 'docker.io/team/web:1');
  assert.equal(containerdName('ghcr.io/acme/web:1'), 'ghcr.io/acme/web:1');
  assert.equal(containerdName('localhost/web:1'), 'localhost/web:1');
});
