import type { BakeEvent } from '../bake/events.js';
import { shortDigest } from '../oci/digest.js';
import { formatBytes, formatMs } from './format.js';

/**
 * Renders bake events: on a terminal, a live status line for the step at work (files
 * hashed, elapsed time) above which finished steps are printed; elsewhere, plain lines.
 */
export function bakeProgress(stream: NodeJS.WriteStream, options: { quiet?: boolean } = {}): (event: BakeEvent) => void {
  const tty = Boolean(stream.isTTY) && !process.env.CI;
  let live = '';
  let current: { index: number; total: number; label: string; started: number; files: number } | undefined;
  let timer: NodeJS.Timeout | undefined;

  const clear = () => {
    if (tty && live) stream.write('\r\x1b[2K');
    live = '';
  };
  const draw = () => {
    if (!tty || !current) return;
    const files = current.files ? `, ${current.files} files` : '';
    live = `[${current.index + 1}/${current.total}] ${truncate(current.label, (stream.columns ?? 100) - 30)} (${formatMs(Date.now() - current.started)}${files})`;
    stream.write(`\r\x1b[2K${live}`);
  };
  const print = (line: string) => {
    clear();
    stream.write(`${line}\n`);
    draw();
  };

  return (event) => {
    if (options.quiet && event.type !== 'warning') return;
    switch (event.type) {
      case 'start':
        print(`baking ${event.image}`);
        break;
      case 'step-start':
        current = { index: event.index, total: event.total, label: event.label, started: Date.now(), files: 0 };
        if (tty) {
          timer ??= setInterval(draw, 200);
          timer.unref();
          draw();
        }
        break;
      case 'files':
        if (current) current.files = event.count;
        if (!tty) print(`  hashed ${event.count} files`);
        break;
      case 'output':
        print(`  | ${event.line}`);
        break;
      case 'warning':
        print(`warning: ${event.message}`);
        break;
      case 'step-done': {
        const what = event.digest ? `${event.cached ? 'cached' : 'built'} ${shortDigest(event.digest)} ${formatBytes(event.size)}` : 'nothing to build';
        current = undefined;
        if (timer) clearInterval(timer);
        timer = undefined;
        print(`[${event.index + 1}/${event.total}] ${event.label}: ${what} (${formatMs(event.ms)})`);
        break;
      }
    }
  };
}

function truncate(text: string, width: number): string {
  const max = Math.max(20, width);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
