import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { OutputFiles } from '../output-files.js';

/** How often the read position is saved while lines flow (and always at the end). */
const SAVE_POSITION_MS = 500;

/**
 * Copies a container's stdout and stderr, as the engine keeps them, into the instance's two
 * output files (the same files the process provider writes, so the same pipeline reads both). It
 * follows until the container stops, then ends by itself. The engine's timestamp of the last
 * line copied is saved beside the file, so a follower started again (after a restart of the
 * control plane) goes on from there: nothing is lost, and after a clean stop nothing is
 * copied twice (after a crash, at most the lines of the last half second may be).
 */
export class LogFollower {
  /** Resolves once the container stopped and every line is in the file (or the follower was closed). */
  readonly done: Promise<void>;
  /** True once the engine ended the stream itself (the container stopped): every line is in the file. */
  complete = false;
  private stream: NodeJS.ReadableStream | undefined;
  private closed = false;

  constructor(
    private readonly docker: Docker,
    private readonly container: string,
    private readonly output: OutputFiles,
    private readonly id: string,
  ) {
    this.done = this.run().catch(() => undefined); // a container removed mid-way simply has no more lines
  }

  /** Stops following (the container keeps running; a later follower goes on from the saved position). */
  close(): Promise<void> {
    this.closed = true;
    (this.stream as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    return this.done;
  }

  /** Where the engine's timestamp of the last line copied for instance `id` is kept. */
  static positionFile(output: OutputFiles, id: string): string {
    return `${output.path(id, 'stdout')}.position`;
  }

  private get positionFile(): string {
    return LogFollower.positionFile(this.output, this.id);
  }

  private async run(): Promise<void> {
    let position = await readPosition(this.positionFile);
    const files: Record<1 | 2, WriteStream> = {
      1: createWriteStream(this.output.path(this.id, 'stdout'), { flags: 'a', mode: 0o640 }),
      2: createWriteStream(this.output.path(this.id, 'stderr'), { flags: 'a', mode: 0o640 }),
    };
    // The position saved is that of the last line whose write, and every earlier one's, finished: never ahead.
    const inFlight: Array<{ at: bigint; done: boolean }> = [];
    let written = position;
    let saved = position;
    let saving: Promise<void> = Promise.resolve();
    const save = () => {
      saving = saving.then(async () => {
        const at = written;
        if (at === saved) return;
        saved = at;
        await writePosition(this.positionFile, at).catch(() => undefined);
      });
      return saving;
    };
    const timer = setInterval(() => void save(), SAVE_POSITION_MS);
    timer.unref();
    try {
      if (this.closed) return;
      const stream = (await this.docker.getContainer(this.container).logs({
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        since: position === 0n ? 0 : sinceArgument(position),
      } as Docker.ContainerLogsOptions & { follow: true })) as NodeJS.ReadableStream;
      this.stream = stream;
      if (this.closed) (stream as unknown as { destroy: () => void }).destroy();
      let pending: Buffer = Buffer.alloc(0);
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        for (;;) {
          if (pending.length < 8) break;
          const size = pending.readUInt32BE(4);
          if (pending.length < 8 + size) break;
          // The frame's first byte names its stream: 1 stdout, 2 stderr.
          const out = files[pending[0] === 2 ? 2 : 1];
          const frame = pending.subarray(8, 8 + size).toString('utf8');
          pending = pending.subarray(8 + size);
          const space = frame.indexOf(' ');
          const at = space > 0 ? timestampNanos(frame.slice(0, space)) : undefined;
          if (at !== undefined && at <= position) continue; // copied before a restart
          const line = at === undefined ? frame : frame.slice(space + 1);
          let onWritten: (() => void) | undefined;
          if (at !== undefined) {
            const entry = { at, done: false };
            inFlight.push(entry);
            onWritten = () => {
              entry.done = true;
              while (inFlight[0]?.done) {
                const first = inFlight.shift()!.at;
                if (first > written) written = first;
              }
            };
          }
          if (!out.write(line, onWritten)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
          if (at !== undefined) position = at;
        }
      }
      this.complete = !this.closed;
    } finally {
      clearInterval(timer);
      await Promise.all(Object.values(files).map((out) => new Promise<void>((resolve) => out.end(resolve))));
      await save();
    }
  }
}

/** Parses the engine's RFC 3339 timestamp with nanoseconds to nanoseconds since the epoch. */
export function timestampNanos(text: string): bigint | undefined {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!match) return undefined;
  const wholeSecondMs = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(wholeSecondMs)) return undefined;
  return BigInt(wholeSecondMs) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
}

/** The engine's `since` for a position in nanoseconds: "<seconds>.<nanoseconds>". */
export function sinceArgument(nanos: bigint): string {
  return `${nanos / 1_000_000_000n}.${(nanos % 1_000_000_000n).toString().padStart(9, '0')}`;
}

async function readPosition(file: string): Promise<bigint> {
  const text = (await readFile(file, 'utf8').catch(() => '')).trim();
  return /^\d{1,30}$/.test(text) ? BigInt(text) : 0n;
}

async function writePosition(file: string, nanos: bigint): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${nanos}\n`);
  await rename(tmp, file);
}
