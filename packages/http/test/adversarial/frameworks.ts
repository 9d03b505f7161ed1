/**
 * One edge application, built on every framework Dye supports: the same
 * handler reads the body through events, a pipeline and `finished`, then calls
 * a downstream service from the pipeline's callback, and records the tenant it
 * saw at each of those points. A hook registered before Dye's middleware
 * records what code running before the decision sees, and calls downstream too.
 */
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { finished, pipeline, Writable } from 'node:stream';
import { currentTenant } from '@dye/core';
import { guardUpgrades, honoTenant, koaTenant, type TenantMiddlewareOptions, tenantDispatcher, tenantMiddleware } from '@dye/http';
import { fastifyTenant } from '@dye/http/fastify';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import 'reflect-metadata';
import { Controller, Module, Post, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { forGlobalFetch } from '../support.js';

export type Point = 'pre' | 'handler' | 'data' | 'end' | 'write' | 'pipeline' | 'finished' | 'finish';

export interface Observation {
  tenants: Partial<Record<Point, string>>;
  /** Tenant carriers the application could still read after the decision, with their values. */
  leftovers: string[];
  /** What the downstream service received from the pipeline callback's call (tenant it ran in). */
  downstream?: string;
  /** What the downstream received from the call made before the decision. */
  preDownstream?: string;
  error?: string;
}

/** Records observations by probe id; the downstream answers which tenant it ran in. */
export class Recorder {
  readonly observations = new Map<string, Observation>();
  get(id: string): Observation {
    let observation = this.observations.get(id);
    if (!observation) {
      observation = { tenants: {}, leftovers: [] };
      this.observations.set(id, observation);
    }
    return observation;
  }
}

export interface EdgeApp {
  name: string;
  port: number;
  close(): Promise<void>;
}

export interface AppSetup {
  options: TenantMiddlewareOptions<unknown>;
  recorder: Recorder;
  /** The downstream service (internal mode); answers the tenant it ran in. */
  downstreamUrl: string;
  /** Scans a request for tenant carriers left after the decision. */
  leftovers(req: IncomingMessage, decided: string): string[];
}

const probeOf = (req: IncomingMessage) => String(req.headers['x-probe'] ?? 'none');

/** Code that runs before Dye decided: records and calls downstream with node:http (OTel injects there when installed). */
function preHook(setup: AppSetup, req: IncomingMessage): void {
  const observation = setup.recorder.get(probeOf(req));
  observation.tenants.pre = currentTenant().name;
  const call = httpRequest(`${setup.downstreamUrl}/pre`, { method: 'GET' }, (response) => {
    let text = '';
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      text += chunk;
    });
    response.on('end', () => {
      observation.preDownstream = text;
    });
  });
  call.on('error', (error) => {
    observation.error = `pre call: ${error.message}`;
  });
  call.end();
}

/** The handler every framework runs: body through events, a pipeline and finished; a downstream call from the callback. */
function handle(setup: AppSetup, req: IncomingMessage, res: ServerResponse, respond: (body: Observation) => void): void {
  const observation = setup.recorder.get(probeOf(req));
  const seen = observation.tenants;
  const dispatcher = tenantDispatcher();
  seen.handler = currentTenant().name;
  req.on('data', () => {
    seen.data ??= currentTenant().name;
  });
  req.on('end', () => {
    seen.end = currentTenant().name;
  });
  finished(req, () => {
    seen.finished = currentTenant().name;
  });
  res.on('finish', () => {
    seen.finish = currentTenant().name;
  });
  const sink = new Writable({
    write(_chunk, _encoding, callback) {
      seen.write ??= currentTenant().name;
      callback();
    },
  });
  pipeline(req, sink, (error) => {
    seen.pipeline = currentTenant().name;
    if (error) observation.error = error.message;
    observation.leftovers = setup.leftovers(req, seen.handler ?? 'baseline');
    fetch(`${setup.downstreamUrl}/body`, { dispatcher: forGlobalFetch(dispatcher) })
      .then((response) => response.text())
      .then(
        (text) => {
          observation.downstream = text;
          respond(observation);
        },
        (failure: Error) => {
          observation.error = `downstream: ${failure.message}`;
          respond(observation);
        },
      );
  });
}

function sendJson(res: ServerResponse, body: unknown): void {
  res.statusCode = 200;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

async function listenOn(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
}

export const FRAMEWORKS = ['node:http', 'express', 'fastify', 'koa', 'hono', 'nest-express', 'nest-fastify'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

export async function startEdge(framework: Framework, setup: AppSetup): Promise<EdgeApp> {
  switch (framework) {
    case 'node:http': {
      const middleware = tenantMiddleware(setup.options);
      const server = createServer((req, res) => {
        preHook(setup, req);
        middleware(req, res, () => handle(setup, req, res, (body) => sendJson(res, body)));
      });
      guardUpgrades(server, setup.options);
      return { name: framework, port: await listenOn(server), close: () => closeServer(server) };
    }
    case 'express': {
      const app = express();
      app.use((req, _res, next) => {
        preHook(setup, req);
        next();
      });
      app.use(tenantMiddleware(setup.options));
      app.post('/', (req, res) => handle(setup, req, res, (body) => res.json(body)));
      const server = createServer(app);
      return { name: framework, port: await listenOn(server), close: () => closeServer(server) };
    }
    case 'fastify': {
      const app = Fastify();
      app.addHook('onRequest', (request, _reply, next) => {
        preHook(setup, request.raw);
        next();
      });
      await app.register(fastifyTenant, setup.options);
      // The body stays unread for the handler to stream.
      app.addContentTypeParser('*', (_request, _payload, done) => done(null));
      app.post('/', (request, reply) => {
        handle(setup, request.raw, reply.raw, (body) => reply.send(body));
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { name: framework, port: (app.server.address() as AddressInfo).port, close: () => app.close() };
    }
    case 'koa': {
      const app = new Koa();
      app.use((ctx, next) => {
        preHook(setup, ctx.req);
        return next();
      });
      app.use(koaTenant(setup.options));
      app.use(
        (ctx) =>
          new Promise<void>((resolve) => {
            handle(setup, ctx.req, ctx.res, (body) => {
              ctx.body = body;
              resolve();
            });
          }),
      );
      const server = createServer(app.callback());
      return { name: framework, port: await listenOn(server), close: () => closeServer(server) };
    }
    case 'hono': {
      const app = new Hono<{ Bindings: { incoming: IncomingMessage; outgoing: ServerResponse } }>();
      app.use(async (c, next) => {
        preHook(setup, c.env.incoming);
        await next();
      });
      app.use(honoTenant(setup.options));
      app.post(
        '/',
        (c) =>
          new Promise<Response>((resolve) => {
            handle(setup, c.env.incoming, c.env.outgoing, (body) => resolve(c.json(body)));
          }),
      );
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
      await once(server, 'listening');
      return { name: framework, port: (server.address() as AddressInfo).port, close: () => closeServer(server) };
    }
    case 'nest-express':
    case 'nest-fastify':
      return startNest(framework, setup);
  }
}

/** A Nest controller, decorated by calling the decorators (no decorator syntax needed in the test build). */
async function startNest(framework: 'nest-express' | 'nest-fastify', setup: AppSetup): Promise<EdgeApp> {
  const onFastify = framework === 'nest-fastify';
  class ProbeController {
    probe(req: IncomingMessage | { raw: IncomingMessage }, res: ServerResponse | { raw: ServerResponse }): void {
      if (onFastify) {
        const reply = res as { raw: ServerResponse; code(status: number): { send(body: unknown): void } };
        handle(setup, (req as { raw: IncomingMessage }).raw, reply.raw, (body) => reply.code(200).send(body));
        return;
      }
      handle(setup, req as IncomingMessage, res as ServerResponse, (body) => sendJson(res as ServerResponse, body));
    }
  }
  const descriptor = Object.getOwnPropertyDescriptor(ProbeController.prototype, 'probe') as PropertyDescriptor;
  Req()(ProbeController.prototype, 'probe', 0);
  Res()(ProbeController.prototype, 'probe', 1);
  Post('/')(ProbeController.prototype, 'probe', descriptor);
  Controller()(ProbeController);
  class ProbeModule {}
  Module({ controllers: [ProbeController] })(ProbeModule);

  if (onFastify) {
    const adapter = new FastifyAdapter();
    const instance = adapter.getInstance();
    instance.addHook('onRequest', (request, _reply, next) => {
      preHook(setup, request.raw);
      next();
    });
    instance.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const app = await NestFactory.create<NestFastifyApplication>(ProbeModule, adapter, { logger: false });
    await app.register(fastifyTenant as never, setup.options as never);
    await app.listen(0, '127.0.0.1');
    return { name: framework, port: (app.getHttpServer().address() as AddressInfo).port, close: () => app.close() };
  }
  const app = await NestFactory.create(ProbeModule, new ExpressAdapter(express()), { logger: false, bodyParser: false });
  app.use((req: IncomingMessage, _res: ServerResponse, next: () => void) => {
    preHook(setup, req);
    next();
  });
  app.use(tenantMiddleware(setup.options));
  await app.listen(0, '127.0.0.1');
  return { name: framework, port: (app.getHttpServer().address() as AddressInfo).port, close: () => app.close() };
}
