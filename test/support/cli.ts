import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = `${REPO}bin/imago.js`;

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `imago` CLI (as users do) in `cwd` with the given state home. */
export function imago(args: string[], options: { cwd?: string; home: string; env?: Record<string, string> }): Promise<CliResult> {
  if (!existsSync(`${REPO}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  return run(process.execPath, [BIN, '--home', options.home, ...args], { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env } });
}

/** Runs the built CLI through `prefix` (e.g. setpriv as another user), with exactly `env`. */
export function imagoVia(prefix: string[], args: string[], options: { cwd: string; home: string; env: Record<string, string> }): Promise<CliResult> {
  return run(prefix[0]!, [...prefix.slice(1), process.execPath, BIN, '--home', options.home, ...args], { cwd: options.cwd, env: options.env });
}

/** Runs a program to its end, collecting what it printed and its exit code. */
function run(cmd: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Runs a program and returns its output; rejects with its stderr on a non-zero exit. */
export function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}${out}`))));
  });
}
