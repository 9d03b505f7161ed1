import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';

/** A node:http server on an ephemeral loopback port; `close()` ends it and its connections. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<{ server: Server; url: string; port: number; close: () => Promise<void> }> {
  const server = createServer(handler);
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://${host}:${port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends a request with exactly these header lines (names in their case,
 * repeated as given) from `localAddress`, which no HTTP client library does.
 */
export function rawRequest(port: number, headerLines: readonly string[], localAddress = '127.0.0.1', path = '/'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n${headerLines.map((line) => `${line}\r\n`).join('')}\r\n`,
    );
  });
}

/**
 * Node's global fetch types `dispatcher` with its bundled undici's types; an
 * undici package Dispatcher is the same thing at run time.
 */
export function forGlobalFetch(dispatcher: import('undici').Dispatcher): RequestInit['dispatcher'] {
  return dispatcher as unknown as RequestInit['dispatcher'];
}
