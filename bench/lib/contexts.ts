import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeHostRoot, type HostRoot } from './host-root.js';
import { DEFAULT_TREE, writeTree } from './tree.js';

/** The image both tools build from the hello example (the name imago gives it, the tag docker does). */
export const HELLO = { image: 'hello', tag: 'imago-bench-hello:latest' } as const;

/** The image both tools build from the tree of small files. */
export const TREE = { image: 'tree', tag: 'imago-bench-tree:latest' } as const;

/**
 * The docker equivalent of examples/hello/imago.yaml: the host base as `hostroot/`, the app,
 * then the run step (with the env and workdir imago runs it with), then the metadata.
 * The run step is the same shell form imago runs (`/bin/sh -c`, sh being busybox).
 */
const HELLO_DOCKERFILE = `FROM scratch
COPY hostroot/ /
COPY app/ /app
ENV APP_VERSION=1 NODE_ENV=production
WORKDIR /app
RUN busybox mkdir -p /var/lib/hello
USER 1000:1000
EXPOSE 8080
LABEL org.opencontainers.image.title=hello
ENTRYPOINT ["/usr/bin/node"]
CMD ["server.js"]
`;

/**
 * Prepares one folder that is both imago's and docker's build context for the hello
 * example: a copy of examples/hello (imago.yaml and app/; a copy, so imago's git lookup
 * does not run against the repository being edited), plus `hostroot/` and a Dockerfile.
 */
export async function writeHelloContext(repoRoot: string, dir: string): Promise<HostRoot> {
  await mkdir(dir, { recursive: true });
  const example = join(repoRoot, 'examples', 'hello');
  await cp(join(example, 'imago.yaml'), join(dir, 'imago.yaml'));
  await cp(join(example, 'app'), join(dir, 'app'), { recursive: true, filter: (src) => !src.endsWith('.test.js') });
  await writeFile(join(dir, 'Dockerfile'), HELLO_DOCKERFILE);
  // docker sends the whole folder to the daemon; imago reads only app/ from it (and the host files from the host).
  await writeFile(join(dir, '.dockerignore'), 'imago.yaml\n');
  return writeHostRoot(join(dir, 'hostroot'), ['node', 'busybox']);
}

/** imago's config for the tree: from scratch, one copy step to /data. JSON is YAML. */
const TREE_CONFIG = { images: { [TREE.image]: { copy: [{ src: 'tree/', dest: '/data' }] } } };

/** Prepares the tree case's build context: `tree/` of 10,000 small files, imago.yaml and a Dockerfile. */
export async function writeTreeContext(dir: string): Promise<{ files: number; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const written = await writeTree(join(dir, 'tree'), DEFAULT_TREE);
  await writeFile(join(dir, 'imago.yaml'), `${JSON.stringify(TREE_CONFIG, null, 2)}\n`);
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY tree/ /data\n');
  await writeFile(join(dir, '.dockerignore'), 'imago.yaml\n');
  return written;
}
