/**
 * With the OpenTelemetry SDK's HTTP and undici instrumentations injecting W3C
 * baggage on every outbound request: the tenant reaches internal hosts and
 * never an outside one, whichever of the two injects last. Run by
 * egress-otel.test.ts (OTel subscribed first) and egress-otel-dye-first.test.ts.
 */

import http from 'node:http';
import { createRequire } from 'node:module';
import { readTenantInput, setLogger, withTenant } from '@dye/core';
import { enableNodeHttp } from '@dye/http';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forGlobalFetch, listen } from '../support.js';

/** Starts the OpenTelemetry SDK as a service does: context manager, W3C propagators, HTTP and undici instrumentation. */
export function startOtel(): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(new BasicTracerProvider());
  registerInstrumentations({ instrumentations: [new HttpInstrumentation(), new UndiciInstrumentation()] });
  createRequire(import.meta.url)('node:http');
}

export const egress = { internal: ['127.0.0.1/32'] };

/** `order` says which subscribed to undici's request channel first: OTel's instrumentation or Dye's hop check. */
export function defineOtelEgressSuite(order: string, dispatcher: () => import('undici').Dispatcher): void {
  describe(`with the OpenTelemetry SDK (${order})`, () => {
    const seen: Array<{ server: string; tenant: string; baggage: string; traced: boolean }> = [];
    let internal: Awaited<ReturnType<typeof listen>>;
    let outside: Awaited<ReturnType<typeof listen>>;
    let restore: () => void;

    beforeAll(async () => {
      setLogger({ warn: () => {} });
      const recorder = (server: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
        const read = readTenantInput(req.headers as Record<string, unknown>);
        seen.push({
          server,
          tenant: read.kind === 'named' ? read.name : read.kind,
          baggage: String(req.headers.baggage ?? ''),
          traced: req.headers.traceparent !== undefined,
        });
        res.end('ok');
      };
      internal = await listen(recorder('internal'), '127.0.0.1');
      outside = await listen(recorder('outside'), '127.0.0.3');
      restore = enableNodeHttp(egress);
    });
    afterAll(async () => {
      restore();
      await internal.close();
      await outside.close();
    });

    function nodeGet(url: string): Promise<void> {
      return new Promise((resolve, reject) => {
        http.get(url, (response) => response.resume().on('end', resolve)).on('error', reject);
      });
    }

    describe.each([
      ['fetch (undici instrumentation)', (url: string) => fetch(url, { dispatcher: forGlobalFetch(dispatcher()) }).then((r) => r.text())],
      ['http.get (HTTP instrumentation)', nodeGet],
    ] as const)('%s', (_name, send) => {
      it('red: tenant=red in the baggage to the internal host, no tenant at all to the outside host', async () => {
        seen.length = 0;
        await withTenant('red', async () => {
          // Baggage OpenTelemetry carries besides the tenant survives both hops.
          const withUser = propagation.setBaggage(
            context.active(),
            (propagation.getActiveBaggage() ?? propagation.createBaggage()).setEntry('user', { value: 'u1' }),
          );
          await context.with(withUser, async () => {
            await send(`${internal.url}/`);
            await send(`${outside.url}/`);
          });
        });
        expect(seen.map(({ server, tenant }) => [server, tenant])).toEqual([
          ['internal', 'red'],
          ['outside', 'none'],
        ]);
        expect(seen.every((hit) => hit.traced)).toBe(true);
        expect(seen[0]?.baggage).toMatch(/tenant=red/);
        expect(seen[1]?.baggage).not.toMatch(/tenant/i);
        expect(seen[1]?.baggage).toMatch(/user=u1/);
      });
    });
  });
}
