import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after } from 'node:test';

/** A test backend: an HTTP server on loopback that names itself in its answers. */
export interface Backend {
  name: string;
  server: Server;
  port: number;
  /** Answers every request parked on `/slow`. */
  release: () => void;
  /** What each request looked like. */
  seen: Array<{ host: string | undefined; xff: string | undefined; path: string | undefined; proto: string | undefined }>;
  /** Upgraded connections open now. */
  tunnels: Set<Duplex>;
  /** Stops it: refuses new connections and cuts the open ones. */
  kill: () => void;
}

/** Request ids (`x-cut` header) some backend already cut once: shared, so the retry is answered wherever it lands. */
const cutOnce = new Set<string>();

/**
 * A backend answering with its name. `/slow` waits until released; `/echo` returns the body
 * after its name; `/status/NNN` answers that status; `/bytes/N` answers N bytes; a request with
 * an `x-cut: <id>` header is read and then cut without an answer the first time any backend
 * sees that id (an instance dying mid-request); `Upgrade: echo` and WebSocket upgrades echo.
 */
export async function backend(name: string): Promise<Backend> {
  const waiting: Array<() => void> = [];
  const seen: Backend['seen'] = [];
  const tunnels = new Set<Duplex>();
  const server = createServer((req, res) => {
    seen.push({ host: req.headers.host, xff: req.headers['x-forwarded-for'] as string | undefined, path: req.url, proto: req.headers['x-forwarded-proto'] as string | undefined });
    const cut = req.headers['x-cut'];
    if (typeof cut === 'string' && !cutOnce.has(cut)) {
      cutOnce.add(cut);
      req.resume();
      req.on('end', () => req.socket.destroy());
      return;
    }
    if (req.url === '/slow') {
      waiting.push(() => res.end(`${name} slow done`));
      return;
    }
    if (req.url === '/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(`${name}:${Buffer.concat(chunks).toString()}`));
      return;
    }
    const status = /^\/status\/(\d{3})$/.exec(req.url ?? '')?.[1];
    if (status) {
      res.writeHead(Number(status));
      res.end(name);
      return;
    }
    const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? '')?.[1];
    if (bytes) {
      res.end(Buffer.alloc(Number(bytes), 'x'));
      return;
    }
    req.resume();
    res.end(name);
  });
  server.on('upgrade', (req, socket: Duplex) => {
    tunnels.add(socket);
    socket.on('close', () => tunnels.delete(socket));
    socket.on('error', () => undefined);
    if (String(req.headers.upgrade).toLowerCase() === 'websocket') return webSocketEcho(name, req.headers['sec-websocket-key'] as string, socket);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n${name}>`);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kill = () => {
    server.closeAllConnections();
    for (const t of tunnels) t.destroy();
    server.close();
  };
  after(() => kill());
  return { name, server, port: (server.address() as AddressInfo).port, release: () => waiting.splice(0).forEach((w) => w()), seen, tunnels, kill };
}

/** The WebSocket handshake, then each text frame the client sends comes back as `<name>:<text>`. */
function webSocketEcho(name: string, key: string, socket: Duplex): void {
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    // Client frames: FIN + opcode, MASK + length (< 126 here), 4-byte mask, payload.
    while (buffered.length >= 6) {
      const opcode = buffered[0]! & 0x0f;
      const length = buffered[1]! & 0x7f;
      if (length >= 126 || buffered.length < 6 + length) return;
      const mask = buffered.subarray(2, 6);
      const payload = Buffer.from(buffered.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]!));
      buffered = buffered.subarray(6 + length);
      if (opcode === 0x8) {
        socket.end(Buffer.from([0x88, 0]));
        return;
      }
      if (opcode !== 0x1) continue;
      const out = Buffer.from(`${name}:${payload.toString()}`);
      socket.write(Buffer.concat([Buffer.from([0x81, out.length]), out]));
    }
  });
}

/** A TCP backend that greets with its name, then echoes. */
export async function tcpBackend(name: string): Promise<{ port: number; server: TcpServer; sockets: Set<Socket>; kill: () => void }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.write(`${name}>`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kill = () => {
    for (const s of sockets) s.destroy();
    server.close();
  };
  after(() => kill());
  return { port: (server.address() as AddressInfo).port, server, sockets, kill };
}

/** A self-signed certificate for 127.0.0.1 and localhost, made by openssl in `dir`. */
export function selfSigned(dir: string, name = 'router'): { cert: string; key: string; certPem: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key, certPem: readFileSync(cert, 'utf8') };
}

/** Writes `text` to `dir/name` and returns the path. */
export function writeIn(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
