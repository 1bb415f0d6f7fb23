import type { Command } from 'commander';
import { join } from 'node:path';
import { ImageError, ImagoError, reasonOf } from '../../errors.js';
import { shortDigest } from '../../oci/digest.js';
import { listRevocations, revokeDigest } from '../../state/revocations.js';
import type { ImageStore } from '../../store/image-store.js';
import { cliActor } from '../api-client.js';
import { exists } from '../../util/exists.js';
import { printJson, withStore, type GlobalOptions } from '../context.js';
import { formatAgo, formatBytes, table } from '../format.js';

const EXPORT_FORMATS = ['oci', 'oci-dir', 'docker'] as const;

/** `imago images` and `imago image …`: list, inspect, tag, export, import and remove images. */
export function registerImages(program: Command): void {
  program
    .command('images')
    .description('list the images in the store, by tag')
    .option('--json', 'print as JSON')
    .option('-a, --all', 'include untagged images')
    .action(async (opts: { json?: boolean; all?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const images = store.listImages().filter((image) => opts.all || image.tags.length > 0);
        if (opts.json) return printJson(images);
        const rows: string[][] = [];
        for (const image of images) {
          const names = image.tags.length > 0 ? image.tags : ['<none>:<none>'];
          for (const ref of names) {
            const colon = ref.lastIndexOf(':');
            rows.push([ref.slice(0, colon), ref.slice(colon + 1), shortDigest(image.digest), formatBytes(image.size), image.source, formatAgo(image.createdAt)]);
          }
        }
        process.stdout.write(`${table(['NAME', 'TAG', 'DIGEST', 'SIZE', 'SOURCE', 'CREATED'], rows)}\n`);
      });
    });

  const image = program.command('image').description('work with one image');

  image
    .command('inspect')
    .description('show an image: manifest, config, tags and provenance')
    .argument('<ref>', 'name, name:tag, digest or digest prefix')
    .option('--json', 'print as JSON')
    .action(async (ref: string, opts: { json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const digest = store.resolve(ref);
        const record = store.getImage(digest)!;
        const manifest = await store.manifest(digest);
        const config = await store.config(digest);
        if (opts.json) return printJson({ ...record, manifest, config });
        const c = config.config ?? {};
        const lines = [
          `digest:      ${digest}`,
          `tags:        ${record.tags.join(', ') || '<none>'}`,
          `source:      ${record.source}, ${formatAgo(record.createdAt)}`,
          `platform:    ${config.os}/${config.architecture}`,
          `size:        ${formatBytes(record.size)} in ${manifest.layers.length} layers`,
          ...manifest.layers.map((l, i) => `  layer ${i + 1}:   ${l.digest} ${formatBytes(l.size)}  ${config.history?.filter((h) => !h.empty_layer)[i]?.created_by ?? ''}`),
          `entrypoint:  ${JSON.stringify(c.Entrypoint ?? [])}  cmd: ${JSON.stringify(c.Cmd ?? [])}`,
          `workdir:     ${c.WorkingDir ?? '/'}  user: ${c.User ?? '0'}  ports: ${Object.keys(c.ExposedPorts ?? {}).join(', ') || '-'}`,
          `env:         ${(c.Env ?? []).join(' ')}`,
          ...Object.entries(c.Labels ?? {}).map(([k, v]) => `label:       ${k}=${v}`),
          ...Object.entries(record.provenance ?? {}).map(([k, v]) => `provenance:  ${k}: ${String(v)}`),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });

  image
    .command('tag')
    .description('point a tag at an image')
    .argument('<ref>', 'the image')
    .argument('<target>', 'the new name:tag')
    .action(async (ref: string, target: string, _opts: unknown, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const digest = store.resolve(ref);
        const colon = target.lastIndexOf(':');
        if (colon <= 0) throw new ImageError(`invalid target '${target}': expected name:tag`, { badInput: true });
        await store.tag(target.slice(0, colon), target.slice(colon + 1), digest);
        process.stdout.write(`${target} -> ${digest}\n`);
      });
    });

  image
    .command('export')
    .description('write an image as an OCI layout (tar or folder) or a docker archive')
    .argument('<ref>', 'the image')
    .requiredOption('-o, --output <path>', 'file (or folder, for oci-dir) to write')
    .option('-f, --format <format>', `one of ${EXPORT_FORMATS.join(', ')}`, 'oci')
    .action(async (ref: string, opts: { output: string; format: string }, cmd: Command) => {
      if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format)) {
        throw new ImageError(`--format: expected one of ${EXPORT_FORMATS.join(', ')}, got "${opts.format}"`, { badInput: true });
      }
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { exportImage } = await import('../../image/export.js');
        // Ctrl-C (or SIGTERM) cancels the export and removes its half-written file.
        const abort = new AbortController();
        const cancel = () => abort.abort();
        process.once('SIGINT', cancel).once('SIGTERM', cancel);
        try {
          await exportImage(store, ref, opts.output, { format: opts.format as (typeof EXPORT_FORMATS)[number], signal: abort.signal });
        } finally {
          process.off('SIGINT', cancel).off('SIGTERM', cancel);
        }
        process.stdout.write(`exported ${ref} to ${opts.output} (${opts.format})\n`);
      });
    });

  image
    .command('import')
    .description('import an OCI layout (folder or tar) or a docker save archive')
    .argument('<path>', 'the archive or folder')
    .option('-t, --tag <name:tag>', 'tag for the imported image')
    .option('-f, --force', 'move tags that already point at another image')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, opts: { tag?: string; force?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { importImage } = await import('../../image/import.js');
        const result = await importImage(store, path, { ...(opts.tag ? { tag: opts.tag } : {}), force: opts.force });
        for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
        if (opts.json) return printJson(result);
        process.stdout.write(`imported ${result.digest}${result.tags.length ? ` as ${result.tags.join(', ')}` : ''}\n`);
      });
    });

  image
    .command('revoke')
    .description('never deploy or roll back to this image again, anywhere (what runs it is flagged in imago status)')
    .argument('<ref>', 'tag or digest')
    .requiredOption('--reason <text>', 'why (kept in the ledger)')
    .option('--json', 'print the revocation as JSON')
    .action(async (ref: string, opts: { reason: string; json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        if (opts.reason.trim() === '') throw new ImagoError('--reason: say why the image is revoked', { exitCode: 2 });
        const digest = store.resolve(ref);
        const { revocation, created } = revokeDigest(store.db, { digest, reason: opts.reason, actor: cliActor() });
        if (opts.json) return printJson({ ...revocation, created });
        process.stdout.write(created ? `revoked ${digest}: ${revocation.reason}\n` : `${digest} was already revoked by ${revocation.revokedBy} at ${revocation.revokedAt}: ${revocation.reason}\n`);
      });
    });

  image
    .command('verify')
    .description("check an image's signed provenance: signed by a trusted key, unchanged since, and about this image (exit 1 if not)")
    .argument('<ref>', 'tag or digest')
    .option('--key <file...>', "trust these public keys (PEM files) instead of the state folder's own signing key")
    .option('--json', 'print the result as JSON')
    .action(async (ref: string, opts: { key?: string[]; json?: boolean }, cmd: Command) => {
      const [{ parsePublicKey, signingKeyPaths }, { verifyImage }, { readFile }] = await Promise.all([import('../../sign/keys.js'), import('../../sign/signatures.js'), import('node:fs/promises')]);
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const digest = store.resolve(ref);
        const files = opts.key ?? [signingKeyPaths(store.home).publicKey];
        const keys = await Promise.all(files.map(async (file) => {
          const pem = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
            throw new ImagoError(`${opts.key ? '--key' : 'the state folder\'s signing key'}: cannot read ${file}: ${error.code === 'ENOENT' && !opts.key ? 'no such file (nothing was baked with this state folder yet): name a key with --key' : (error.code ?? error.message)}`, { exitCode: 2 });
          });
          return parsePublicKey(pem, file);
        }));
        const result = await verifyImage(store, digest, keys);
        if (opts.json) {
          printJson(result.ok ? { digest, verified: true, keyid: result.keyid, signature: result.signature, statement: result.statement } : { digest, verified: false, reason: result.reason, message: result.message });
        } else if (result.ok) {
          const predicate = (result.statement.predicate ?? {}) as { runDetails?: { builder?: { id?: string }; metadata?: { finishedOn?: string } }; buildDefinition?: { externalParameters?: { spec?: string } } };
          process.stdout.write(`verified ${digest}: signed by key ${result.keyid.slice(0, 16)}; built by ${predicate.runDetails?.builder?.id ?? '?'} at ${predicate.runDetails?.metadata?.finishedOn ?? '?'} from spec ${predicate.buildDefinition?.externalParameters?.spec ?? '?'}\n`);
        }
        if (!result.ok) {
          if (opts.json) process.exitCode = 1;
          else throw new ImagoError(`not verified: ${result.message}`);
        }
      });
    });

  image
    .command('revoked')
    .description('the images revoked, oldest first')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const revoked = listRevocations(store.db);
        if (opts.json) return printJson(revoked);
        if (revoked.length === 0) return void process.stdout.write('no image is revoked\n');
        process.stdout.write(`${table(['DIGEST', 'REVOKED', 'BY', 'REASON'], revoked.map((r) => [shortDigest(r.digest), formatAgo(r.revokedAt), r.revokedBy, r.reason]))}\n`);
      });
    });

  image
    .command('rm')
    .description('remove tags or images (blobs are freed by `imago gc`)')
    .argument('<refs...>', 'tags or digests')
    .option('-f, --force', 'remove an image by digest even when tags point at it')
    .option('--json', 'print the result as JSON')
    .action(async (refs: string[], opts: { force?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const results = [];
        for (const ref of refs) results.push({ ref, ...(await store.remove(ref, { force: opts.force })) });
        if (opts.json) return printJson(results);
        for (const r of results) {
          for (const tag of r.untagged) process.stdout.write(`untagged ${tag}\n`);
          if (r.deleted) process.stdout.write(`deleted ${r.deleted}\n`);
        }
      });
    });

  program
    .command('fsck')
    .description('check that every blob hashes to its name and every image is whole')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const { verifyStore } = await import('../../store/verify-store.js');
        const report = await verifyStore(store);
        if (opts.json) printJson(report);
        else {
          for (const p of report.problems) process.stdout.write(`${p.kind} ${p.subject}: ${p.detail}\n`);
          process.stdout.write(`checked ${report.blobs} blobs and ${report.images} images: ${report.problems.length === 0 ? 'ok' : `${report.problems.length} problems`}\n`);
        }
        if (report.problems.length > 0) throw new ImageError(`the store has ${report.problems.length} problems`);
      });
    });

  program
    .command('gc')
    .description('delete images no tag or release refers to, and blobs no image uses (and, when this home used Docker, the engine images it loaded that none refers to)')
    .option('--dry-run', 'only say what would be deleted')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean }, cmd: Command) => {
      await withStore(cmd.optsWithGlobals<GlobalOptions>(), async (store) => {
        const result = await store.gc({ dryRun: opts.dryRun });
        const engine = await pruneEngineImages(store, opts.dryRun);
        if (opts.json) return printJson({ ...result, ...(engine ? { engineImages: engine } : {}) });
        const verb = opts.dryRun ? 'would delete' : 'deleted';
        process.stdout.write(
          `${verb} ${result.removedImages.length} images and ${result.removedBlobs} blobs (${formatBytes(result.freedBytes)}); kept ${result.keptImages} images\n`,
        );
        if (engine && 'error' in engine) process.stderr.write(`warning: the Docker Engine's images were not pruned: ${engine.error}\n`);
        else if (engine) process.stdout.write(`${verb} ${engine.removed.length} images from the Docker Engine; kept ${engine.kept.length} (a tag or release refers to them, or a container uses them)\n`);
      });
    });
}

/**
 * When this home ran instances on Docker, removes the engine images it loaded that no tag or
 * release refers to any more. An engine that cannot be reached is reported, not fatal: the
 * store's own gc is done either way.
 */
async function pruneEngineImages(store: ImageStore, dryRun: boolean | undefined): Promise<{ removed: string[]; kept: string[] } | { error: string } | undefined> {
  if (!(await exists(join(store.home, 'docker', 'scope')))) return undefined;
  const { DockerProvider } = await import('../../providers/docker/docker-provider.js');
  const provider = new DockerProvider(store);
  try {
    return await provider.pruneImages(store.rootDigests(), { dryRun });
  } catch (error) {
    return { error: reasonOf(error) };
  } finally {
    await provider.close();
  }
}
