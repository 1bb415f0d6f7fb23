/**
 * The built-in router as a process of its own: `node main.js <folder>`. It reads router.json,
 * serves the service's address with the built-in engine, answers its control API on a unix
 * socket (mode 0600) in the folder, and runs until told to stop — whatever happens to the
 * control plane that started it.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { RouterError } from '../../errors.js';
import { IMAGO_VERSION } from '../../version.js';
import { RouterEngine } from '../engine/engine.js';
import { configSchema, CONFIG_FILE, CONTROL_SOCKET, EXIT, PID_FILE, targetSchema, weightsSchema, type BuiltinHealth } from './protocol.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: main.js <router folder>\n');
  process.exit(EXIT.failed);
}

const config = configSchema.parse(JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')));
const engine = new RouterEngine(config.service, config.listen);
const startedAt = Date.now();

async function main(): Promise<void> {
  let address: { host: string; port: number };
  try {
    address = await engine.start();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(error instanceof RouterError && error.inUse ? EXIT.inUse : error instanceof RouterError && error.badInput ? EXIT.badInput : EXIT.failed);
  }
  const health: BuiltinHealth = { pid: process.pid, service: config.service, listen: { ...address, protocol: config.listen.protocol, tls: config.listen.tls !== undefined }, version: IMAGO_VERSION, startedAt };
  const socket = join(dir!, CONTROL_SOCKET);
  rmSync(socket, { force: true });
  const control = createServer((req, res) => {
    handle(req, res, health).catch((error: unknown) => send(res, 500, { error: (error as Error).message }));
  });
  // Only the user that runs imago may steer its router: the socket is made 0600 before anyone can connect.
  const umask = process.umask(0o177);
  await new Promise<void>((resolve) => control.listen(socket, resolve));
  process.umask(umask);
  chmodSync(socket, 0o600);
  const pidFile = join(dir!, PID_FILE);
  writeFileSync(`${pidFile}.tmp`, `${process.pid}\n`);
  renameSync(`${pidFile}.tmp`, pidFile);
  process.stdout.write(`router for '${config.service}' serves ${address.host}:${address.port} (${config.listen.protocol}${config.listen.tls ? ', tls' : ''}), pid ${process.pid}\n`);
  const stop = async () => {
    control.close();
    await engine.close();
    rmSync(pidFile, { force: true });
    rmSync(socket, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  // A control plane that ends its session sends SIGHUP to its group: the router is not of it, but say so.
  process.on('SIGHUP', () => undefined);
  stopper = stop;
}

let stopper: (() => Promise<void>) | undefined;

async function handle(req: IncomingMessage, res: ServerResponse, health: BuiltinHealth): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://router');
  const target = /^\/v1\/targets\/([^/]+)(\/unroute)?$/.exec(url.pathname);
  if (req.method === 'GET' && url.pathname === '/v1/health') return send(res, 200, health);
  if (req.method === 'GET' && url.pathname === '/v1/snapshot') return send(res, 200, engine.snapshot());
  if (req.method === 'GET' && url.pathname === '/v1/stats') return send(res, 200, engine.stats());
  if (req.method === 'PUT' && url.pathname === '/v1/weights') {
    const body = weightsSchema.safeParse(await readJson(req));
    if (!body.success) return send(res, 400, { error: body.error.message });
    engine.setWeights(body.data.weights);
    return send(res, 200, {});
  }
  if (target && req.method === 'PUT' && !target[2]) {
    const body = targetSchema.safeParse(await readJson(req));
    if (!body.success) return send(res, 400, { error: body.error.message });
    engine.route(body.data);
    return send(res, 200, {});
  }
  if (target && req.method === 'POST' && target[2]) {
    engine.unroute(decodeURIComponent(target[1]!));
    return send(res, 200, {});
  }
  if (target && req.method === 'DELETE' && !target[2]) {
    engine.forget(decodeURIComponent(target[1]!));
    return send(res, 200, {});
  }
  if (req.method === 'PUT' && url.pathname === '/v1/listen') {
    const body = configSchema.shape.listen.safeParse(await readJson(req));
    if (!body.success) return send(res, 400, { error: body.error.message, badInput: true });
    try {
      const address = await engine.relisten(body.data);
      health.listen = { ...address, protocol: body.data.protocol, tls: body.data.tls !== undefined };
      // What a restart of this process serves: the new address.
      const file = join(dir!, CONFIG_FILE);
      writeFileSync(`${file}.tmp`, `${JSON.stringify({ service: config.service, listen: { ...body.data, port: address.port } }, null, 2)}\n`, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
      return send(res, 200, address);
    } catch (error) {
      const routerError = error instanceof RouterError ? error : undefined;
      return send(res, routerError?.inUse ? 409 : routerError?.badInput ? 400 : 500, { error: (error as Error).message, inUse: routerError?.inUse === true, badInput: routerError?.badInput === true });
    }
  }
  if (req.method === 'POST' && url.pathname === '/v1/stop') {
    send(res, 200, {});
    res.on('finish', () => void stopper?.());
    return;
  }
  send(res, 404, { error: `no such call: ${req.method} ${url.pathname}` });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

void main();
