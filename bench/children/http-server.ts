/**
 * A bare node:http keep-alive server answering `ok`, run as a child process so
 * a suite can count its CPU time apart from the client's (see child.ts).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveChild } from '../child.js';

const server = createServer({ keepAlive: true }, (_req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end('ok');
});
server.listen(0, '127.0.0.1', () => serveChild({ port: (server.address() as AddressInfo).port }));
