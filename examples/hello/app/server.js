// hello: a tiny HTTP service that answers with its version. imago's example app.
import { createServer } from 'node:http';

const version = process.env.APP_VERSION ?? 'dev';
const port = Number(process.env.PORT ?? 8080);
// imago passes the address to bind: loopback for a process, every interface inside a container.
const host = process.env.HOST ?? '127.0.0.1';
const started = new Date().toISOString();

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify({ app: 'hello', version, started, host: req.headers.host ?? null })}\n`);
});

server.listen(port, host, () => console.log(`hello ${version} listening on ${host}:${port}`));

// Finish in-flight requests on SIGTERM, then exit: instances are drained, never cut.
process.on('SIGTERM', () => {
  console.error('SIGTERM: closing'); // stderr: what an app says about itself, apart from its output
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
});
