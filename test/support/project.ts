import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO } from './cli.js';

/** What an examples/hello image in a test project's imago.yaml may change. */
export interface HelloImage {
  /** Host executables of its base (default: node). */
  host?: string[];
  /** Its cmd (default: server.js). */
  cmd?: string[];
  /** More keys, as YAML lines indented under the image (`    user: "1000:1000"`). */
  extra?: string[];
}

/** The YAML lines of an image `name` made of examples/hello's app. */
export function helloImage(name: string, image: HelloImage = {}): string[] {
  return [
    `  ${name}:`,
    `    context: ${join(REPO, 'examples', 'hello')}`,
    `    from: { host: [${(image.host ?? ['node']).join(', ')}] }`,
    '    copy: [{ src: app/, dest: /app }]',
    '    workdir: /app',
    '    entrypoint: [/usr/bin/node]',
    `    cmd: ${JSON.stringify(image.cmd ?? ['server.js'])}`,
    ...(image.extra ?? []),
  ];
}

/**
 * Writes `<project>/imago.yaml`: the images (by name; default one `hello`) and one service
 * `web` of the image `hello` with `service` as its YAML lines (indented under it).
 */
export async function writeHelloProject(project: string, service: string[], images: Record<string, HelloImage> = { hello: {} }): Promise<void> {
  const lines = ['images:', ...Object.entries(images).flatMap(([name, image]) => helloImage(name, image)), 'services:', '  web:', '    image: hello', ...service, ''];
  await writeFile(join(project, 'imago.yaml'), lines.join('\n'));
}
