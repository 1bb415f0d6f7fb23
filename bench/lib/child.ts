import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

/** What a finished child process printed, how it ended, and how long it took. */
export interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to completion, capturing its output; the wall time covers spawn to exit. */
export function runChild(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => reject(new Error(`failed to start '${file}': ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => {
      const ms = performance.now() - started;
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms });
    });
  });
}

/** The last lines of a program's output, for error messages. */
export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
