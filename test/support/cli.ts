import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './net.js';

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
export function imago(args: string[], options: { cwd?: string; home: string; env?: Record<string, string>; input?: string }): Promise<CliResult> {
  if (!existsSync(`${REPO}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  return run(process.execPath, [BIN, '--home', options.home, ...args], { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env }, ...(options.input !== undefined ? { input: options.input } : {}) });
}

/** What one CLI run of cliIn is given besides its arguments: a named token (`IMAGO_TOKEN`), standard input. */
export interface CliWith {
  token?: string;
  input?: string;
}

/**
 * The CLI run in `project` with state folder `home`: `run` returns what it did, `ok` asserts
 * it exited 0 and says what it printed when not.
 */
export function cliIn(project: string, home: string): { run: (args: string[], extra?: CliWith) => Promise<CliResult>; ok: (args: string[], extra?: CliWith) => Promise<CliResult> } {
  const run = (args: string[], extra: CliWith = {}) =>
    imago(args, { cwd: project, home, ...(extra.token ? { env: { IMAGO_TOKEN: extra.token } } : {}), ...(extra.input !== undefined ? { input: extra.input } : {}) });
  const ok = async (args: string[], extra?: CliWith) => {
    const result = await run(args, extra);
    assert.equal(result.code, 0, `imago ${args.join(' ')}: ${result.stderr}${result.stdout}`);
    return result;
  };
  return { run, ok };
}

/** Every readable file under `dir` with its bytes (a state folder: databases, logs, router files). */
export async function filesUnder(dir: string): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path).catch(() => undefined); // a socket, or a file gone meanwhile
    if (bytes) out.push([path, bytes]);
  }
  return out;
}

/** Runs the built CLI through `prefix` (e.g. setpriv as another user), with exactly `env`. */
export function imagoVia(prefix: string[], args: string[], options: { cwd: string; home: string; env: Record<string, string> }): Promise<CliResult> {
  return run(prefix[0]!, [...prefix.slice(1), process.execPath, BIN, '--home', options.home, ...args], { cwd: options.cwd, env: options.env });
}

/**
 * Starts `imago server` for `home` on 127.0.0.1:`port` in the background and waits until it
 * answers; fails with what it printed when it exits first. The caller stops it.
 */
export async function startServer(home: string, port: number, args: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, '--home', home, 'server', '--listen', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(`the server to listen (output: ${output})`, async () => (await fetch(`http://127.0.0.1:${port}/v1/ping`).then((r) => r.ok).catch(() => false)) || child.exitCode !== null, 20_000);
  assert.equal(child.exitCode, null, output);
  return child;
}

/** Stops a server with SIGTERM (as a user's Ctrl-C would) and waits until it has exited. */
export async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Runs a program to its end, collecting what it printed and its exit code. */
function run(cmd: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; input?: string }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
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

/**
 * The clean-up of a test that ran `imago server` on `home`: kills the servers still running,
 * stops the routers they left serving, destroys every instance of `providers`, removes the home.
 */
export async function cleanUpHome(home: string, servers: ChildProcess[], providers: Array<'process' | 'docker'> = ['process']): Promise<void> {
  for (const server of servers) if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  if (!home) return;
  const [{ stopRoutersIn }, { ImageStore }, { ProcessProvider }, { DockerProvider }] = await Promise.all([
    import('../../src/router/data-plane.js'),
    import('../../src/store/image-store.js'),
    import('../../src/providers/process/process-provider.js'),
    import('../../src/providers/docker/docker-provider.js'),
  ]);
  await stopRoutersIn(home);
  const store = await ImageStore.open(home);
  for (const name of providers) {
    const provider = name === 'docker' ? new DockerProvider(store) : new ProcessProvider(store);
    for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
    await provider.close();
  }
  store.close();
  await rm(home, { recursive: true, force: true });
}
